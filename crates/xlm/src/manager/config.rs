use super::hydra::{check_unresolved, log_ignored_once, GLOBAL_TOKENIZER};
use crate::plan::Remainder;
use crate::registry::Kwargs;
use crate::source::{DataFiles, LocalFormat};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Lightning-style stage; `setup` runs only for stages in `stages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Training (and the validation inside it).
    Fit,
    /// Validation only.
    Validate,
    /// Testing.
    Test,
    /// Prediction.
    Predict,
}

impl Stage {
    /// Every stage, in Lightning's order.
    pub const ALL: [Stage; 4] = [Stage::Fit, Stage::Validate, Stage::Test, Stage::Predict];
}

impl std::str::FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_string()))
            .map_err(|_| format!("unknown stage `{s}`; expected fit, validate, test or predict"))
    }
}

/// `dataloader_kwargs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataLoaderKwargs {
    /// Examples per batch (default 1).
    #[serde(default = "one")]
    pub batch_size: usize,
    /// Worker threads (default 0: batches built on the calling thread).
    #[serde(default)]
    pub num_workers: usize,
    /// Shuffle map-style train data (default: yes for train, never for eval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle: Option<bool>,
    /// Drop the last partial batch (default false).
    #[serde(default)]
    pub drop_last: bool,
    /// Batches each worker prepares ahead (default 2; `null`, as xlm-core's
    /// configs write for no workers, is the default).
    #[serde(default = "two", deserialize_with = "null_is_two")]
    pub prefetch_factor: usize,
    /// Accepted for xlm-core's configs and ignored (logged once when set):
    /// batches are host int64 arrays; pinning them for a device copy is the
    /// trainer's job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_memory: Option<bool>,
    /// Accepted for xlm-core's configs and ignored (logged once when set):
    /// xlm's workers are threads, so there are no worker processes to keep
    /// alive between epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_workers: Option<bool>,
}

fn null_is_two<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(Option::<usize>::deserialize(d)?.unwrap_or(2))
}

impl Default for DataLoaderKwargs {
    fn default() -> Self {
        Self {
            batch_size: 1,
            num_workers: 0,
            shuffle: None,
            drop_last: false,
            prefetch_factor: 2,
            pin_memory: None,
            persistent_workers: None,
        }
    }
}

/// `train_test_split`: split the downloaded `train` split into two sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTestSplit {
    /// Test side size: a fraction in (0, 1), or a row count (>= 1).
    pub size: f64,
    /// Seed of the split (default 42).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Which side this manager keeps.
    pub split: SplitSide,
}

/// A side of a train/test split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitSide {
    /// The larger side.
    Train,
    /// The `size` side.
    Test,
}

fn one() -> usize {
    1
}
fn two() -> usize {
    2
}
fn default_seed() -> u64 {
    42
}
fn yes() -> bool {
    true
}

/// Which of xlm-core's manager classes a config describes (its `_target_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ManagerKind {
    /// `xlm.datamodule.DatasetManager` (also the default without `_target_`).
    #[default]
    Default,
    /// `xlm.datamodule.LocalDatasetManager`: local files (`ds_type`).
    Local,
    /// `xlm.datamodule.EvalDatasetManager`: map-style, never shuffled.
    Eval,
    /// `xlm.datamodule.UnconditionalGenerationDatasetManager`: `num_examples`
    /// empty examples on every rank.
    UnconditionalGeneration,
}

impl ManagerKind {
    /// xlm-core's class name for each kind, as a Hydra `_target_`.
    pub const TARGETS: [(&'static str, ManagerKind); 4] = [
        ("xlm.datamodule.DatasetManager", ManagerKind::Default),
        ("xlm.datamodule.LocalDatasetManager", ManagerKind::Local),
        ("xlm.datamodule.EvalDatasetManager", ManagerKind::Eval),
        (
            "xlm.datamodule.UnconditionalGenerationDatasetManager",
            ManagerKind::UnconditionalGeneration,
        ),
    ];

    /// The kind a `_target_` names (`None` for an unknown target).
    pub fn from_target(target: &str) -> Option<Self> {
        Self::TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, k)| *k)
    }

    /// xlm-core's class of this kind (`xlm.datamodule.EvalDatasetManager`, ...).
    pub fn target(self) -> &'static str {
        Self::TARGETS
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(t, _)| *t)
            .expect("every kind has a target")
    }

    /// The stages a manager of this kind sets up for when its config has
    /// no `stages`: xlm-core's defaults (fit, validate; validate, test for
    /// `EvalDatasetManager`; every stage for the unconditional-generation
    /// kind, which xlm-core always sets up).
    pub fn default_stages(self) -> &'static [Stage] {
        match self {
            ManagerKind::Default | ManagerKind::Local => &[Stage::Fit, Stage::Validate],
            ManagerKind::Eval => &[Stage::Validate, Stage::Test],
            ManagerKind::UnconditionalGeneration => &Stage::ALL,
        }
    }
}

impl std::fmt::Display for ManagerKind {
    /// xlm-core's class name without the module (`EvalDatasetManager`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.target();
        f.write_str(t.rsplit('.').next().unwrap_or(t))
    }
}

/// The `collator` key (alias `collate_fn`): how examples become a batch.
///
/// - a registered name: `default`, `pad_truncate`, `DefaultCollatorWithPadding`, ...;
/// - a dotted name: xlm-core's `xlm.datamodule.DefaultCollator`,
///   `...DefaultCollatorWithPadding`, `...DefaultCollatorWithDynamicPadding`,
///   or one a user registered under that name;
/// - a Hydra `_target_` mapping: `{_target_: <name>, block_size: 128,
///   tokenizer: ${global_components:tokenizer}, noise_schedule: ...}`; its
///   other keys are the collator's arguments.
///
/// In both forms the arguments `tokenizer` (`null` or
/// `${global_components:tokenizer}`: the tokenizer given to setup) and
/// `noise_schedule` (ignored: xlm's collators add no noise) are understood
/// and not passed on; the others must be arguments the collator takes.
#[derive(Debug, Clone, PartialEq)]
pub enum CollatorSpec {
    /// A registered (possibly dotted) name; arguments in `collate_fn_kwargs`.
    Name(String),
    /// A `_target_` mapping.
    Target {
        /// The collator's name (`_target_`).
        target: String,
        /// The mapping's other keys.
        args: Kwargs,
    },
}

impl Serialize for CollatorSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CollatorSpec::Name(n) => s.serialize_str(n),
            CollatorSpec::Target { target, args } => {
                let mut m = Kwargs::new();
                m.insert("_target_".into(), target.clone().into());
                m.extend(args.clone());
                m.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for CollatorSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(n) => Ok(CollatorSpec::Name(n)),
            serde_json::Value::Object(mut m) => match m.remove("_target_") {
                Some(serde_json::Value::String(target)) => Ok(CollatorSpec::Target { target, args: m }),
                Some(other) => Err(D::Error::custom(format!(
                    "collator: `_target_` must be a collator name, not {other}"
                ))),
                None => Err(D::Error::custom(
                    "collator: a mapping needs `_target_` (the collator's name); its other keys are the arguments",
                )),
            },
            other => Err(D::Error::custom(format!(
                "collator: expected a collator name or a `_target_` mapping, not {other}"
            ))),
        }
    }
}

/// The collator a config selects, with the arguments it passes on.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedCollator {
    /// The config key it came from (`collator` or `collate_fn`), for errors.
    pub key: &'static str,
    /// The registered name.
    pub name: String,
    /// Its keyword arguments (`tokenizer` and `noise_schedule` removed).
    pub kwargs: Kwargs,
}

/// `load_kwargs` of xlm-core's `LocalDatasetManager` (the arguments of
/// `datasets.load_dataset`). Only `data_files` is understood; any other key
/// is an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadKwargs {
    /// The same as the top-level `data_files` (give one of the two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_files: Option<DataFiles>,
}

/// The whole configuration of a `DatasetManager`, with the Python project's
/// key names so configs port across. Unknown keys are errors that name the
/// key; Hydra leftovers (`${...}`, `???`, `defaults`) are errors that name
/// the key path (see [`check_unresolved`]), however the config is
/// deserialised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct DatasetManagerConfig {
    /// xlm-core's class (`xlm.datamodule.EvalDatasetManager`, ...); selects
    /// the [`ManagerKind`]. Any other target is an error unless registered
    /// with [`Registry::register_manager_target`](crate::registry::Registry::register_manager_target).
    #[serde(rename = "_target_", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `repo/dataset/split` or `repo/dataset/config/split` (empty only for
    /// the unconditional-generation kind, which reads no data). For local
    /// files (`ds_type`), a filesystem path of any depth whose last segment
    /// is the split.
    #[serde(default)]
    pub full_name: String,
    /// Unconditional generation (required there, refused elsewhere): the
    /// number of examples *every* rank yields (not split by rank, as in
    /// xlm-core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_examples: Option<usize>,
    /// Unconditional generation: the dataset class. Only
    /// `xlm.datamodule.DefaultEmptyDataset` (also the default when absent)
    /// is built in; any other name is an error naming it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_constructor_str: Option<String>,
    /// Unconditional generation: the dataset class's kwargs
    /// (`DefaultEmptyDataset`: `empty_text`, `tokenizer_kwargs`; see
    /// [`EmptyDatasetSpec`](super::EmptyDatasetSpec)).
    #[serde(default, skip_serializing_if = "Kwargs::is_empty")]
    pub dataset_kwargs: Kwargs,
    /// Used instead of `full_name` when `debug_overfit` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name_debug: Option<String>,
    /// Debug-overfit mode: use `full_name_debug`, no shuffling anywhere.
    #[serde(default)]
    pub debug_overfit: bool,
    /// Batch size, workers, shuffle, drop_last.
    #[serde(default)]
    pub dataloader_kwargs: DataLoaderKwargs,
    /// The collator (xlm-core's key; default `default`). See [`CollatorSpec`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collator: Option<CollatorSpec>,
    /// Alias of `collator` (xlm's first spelling); setting both is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collate_fn: Option<CollatorSpec>,
    /// Arguments of a collator given by name (a `_target_` mapping carries
    /// its own).
    #[serde(default)]
    pub collate_fn_kwargs: Kwargs,
    /// Filter applied at prepare time (needs `filter_suffix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_fn: Option<String>,
    /// Cache-directory suffix of a filtered dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_suffix: Option<String>,
    /// Per-example function applied at prepare time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess_function: Option<String>,
    /// Its kwargs.
    #[serde(default)]
    pub preprocess_function_kwargs: Kwargs,
    /// Accepted for xlm-core's configs and ignored (logged once when set):
    /// it steers the `datasets.map` cache, which xlm does not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess_load_from_cache_file: Option<bool>,
    /// Columns kept after preprocessing (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns_to_keep: Option<Vec<String>>,
    /// Columns dropped after preprocessing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns_to_remove: Option<Vec<String>>,
    /// Filter applied at setup time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_the_fly_filter_fn: Option<String>,
    /// Per-example processor applied as samples are read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_the_fly_processor: Option<String>,
    /// Its kwargs.
    #[serde(default)]
    pub on_the_fly_processor_kwargs: Kwargs,
    /// Accepted for xlm-core's configs and ignored (logged once when set):
    /// it steers the `datasets.map` cache, which xlm does not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_the_fly_load_from_cache_file: Option<bool>,
    /// Group processor: a packer (`pack_sequences`, ...) or a replicator
    /// (`xlm.datamodule.replicate_examples`: each kept row `num_samples`
    /// times in a row); needs `iterable_dataset_shards`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_the_fly_group_processor: Option<String>,
    /// Its kwargs.
    #[serde(default)]
    pub on_the_fly_group_processor_kwargs: Kwargs,
    /// Input columns the group step drops; packed blocks carry only the
    /// packer's outputs, so these must merely exist in the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_the_fly_group_processor_remove_columns: Option<Vec<String>>,
    /// Accepted for xlm-core's configs and ignored (logged once when set):
    /// xlm-core stores it but names no cache directory by it either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    /// Stages `setup` acts on. Absent (or `null`): the kind's default,
    /// [`ManagerKind::default_stages`] (fit, validate; validate, test for
    /// `EvalDatasetManager`), as xlm-core's `stages=None`; `[]` never sets
    /// up. The unconditional-generation kind takes no `stages` (an error):
    /// it sets up for every stage. See
    /// [`effective_stages`](Self::effective_stages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<Stage>>,
    /// Iterable mode over this many contiguous shards (map-style when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterable_dataset_shards: Option<usize>,
    /// Shuffle-buffer size of iterable mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shuffle_buffer_size: Option<usize>,
    /// Seed of every shuffle (default 42).
    #[serde(default = "default_seed")]
    pub shuffle_seed: u64,
    /// Split iterable data by rank under DDP (default true).
    #[serde(default = "yes")]
    pub split_by_node: bool,
    /// Cache prepared data on disk (default true).
    #[serde(default = "yes")]
    pub use_manual_cache: bool,
    /// Rebuild an existing cache.
    #[serde(default)]
    pub rewrite_manual_cache: bool,
    /// Split the downloaded data into train/test sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_test_split: Option<TrainTestSplit>,
    /// Repeat the rank's train stream forever (needs `iterable_dataset_shards`).
    #[serde(default)]
    pub make_infinite: bool,
    /// What the split by rank does with `S mod W` leftover samples (default pad).
    #[serde(default)]
    pub ddp_remainder: Remainder,
    /// Local files: their format (`csv`, or `jsonl`/`json`); selects the
    /// local source (xlm-core's `LocalDatasetManager`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds_type: Option<LocalFormat>,
    /// Local files: one path or a list (read for whichever split the
    /// manager has), or a map from split to path(s) (the entry of the
    /// manager's split). The same meaning as `load_kwargs.data_files`; give
    /// one of the two. Without either, `<parent of full_name>/<split>.csv`
    /// (`.jsonl` for jsonl), as xlm-core reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_files: Option<DataFiles>,
    /// Local files, xlm-core's spelling: `load_kwargs: {data_files: ...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_kwargs: Option<LoadKwargs>,
    /// Evaluation managers: accepted for xlm-core's configs and ignored
    /// (logged once when set): it steers the `datasets.map` cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_from_cache_file: Option<bool>,
}

impl Serialize for DatasetManagerConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        DatasetManagerConfig::serialize(self, s)
    }
}

impl<'de> Deserialize<'de> for DatasetManagerConfig {
    /// Checks for Hydra leftovers first (errors name the key path), then
    /// reads the keys.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = serde_json::Value::deserialize(d)?;
        check_unresolved(&v, "").map_err(D::Error::custom)?;
        DatasetManagerConfig::deserialize(v).map_err(D::Error::custom)
    }
}

impl DatasetManagerConfig {
    /// A config with defaults for everything but `full_name`.
    pub fn new(full_name: &str) -> Self {
        serde_json::from_value(serde_json::json!({ "full_name": full_name }))
            .expect("defaults deserialise")
    }

    /// Parses a JSON config; errors name the unknown or invalid key, or the
    /// key path of a Hydra leftover.
    pub fn from_json(text: &str) -> Result<Self, super::ConfigError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| super::ConfigError::Json(e.to_string()))?;
        Self::from_value(v)
    }

    /// Parses a YAML config (the same keys; e.g. a composed Hydra
    /// `dataset_manager` node).
    #[cfg(feature = "yaml")]
    pub fn from_yaml(text: &str) -> Result<Self, super::ConfigError> {
        let v: serde_json::Value =
            serde_yaml_ng::from_str(text).map_err(|e| super::ConfigError::Json(e.to_string()))?;
        Self::from_value(v)
    }

    fn from_value(v: serde_json::Value) -> Result<Self, super::ConfigError> {
        check_unresolved(&v, "")?;
        let c: Self =
            serde_json::from_value(v).map_err(|e| super::ConfigError::Json(e.to_string()))?;
        c.resolved_collator()?;
        Ok(c)
    }

    /// The stages `setup` acts on for a manager of `kind`: every stage for
    /// the unconditional-generation kind, else `stages` when set, else
    /// [`ManagerKind::default_stages`]. ([`DatasetManager::stages`](super::DatasetManager::stages)
    /// is this for the manager's own kind.)
    pub fn effective_stages(&self, kind: ManagerKind) -> Vec<Stage> {
        match (&self.stages, kind) {
            (_, ManagerKind::UnconditionalGeneration) | (None, _) => kind.default_stages().to_vec(),
            (Some(s), _) => s.clone(),
        }
    }

    /// The collator: `collator` or its alias `collate_fn` (both set is an
    /// error), `default` when neither is; `tokenizer` and `noise_schedule`
    /// arguments are checked and removed (see [`CollatorSpec`]).
    pub fn resolved_collator(&self) -> Result<ResolvedCollator, super::ConfigError> {
        let invalid =
            |key: &'static str, reason: String| super::ConfigError::Invalid { key, reason };
        let (key, spec) = match (&self.collator, &self.collate_fn) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "collator",
                    "`collator` and its alias `collate_fn` are both set; keep one".into(),
                ))
            }
            (Some(s), None) => ("collator", s.clone()),
            (None, Some(s)) => ("collate_fn", s.clone()),
            (None, None) => ("collator", CollatorSpec::Name("default".into())),
        };
        let (name, mut kwargs) = match spec {
            CollatorSpec::Name(n) => (n, self.collate_fn_kwargs.clone()),
            CollatorSpec::Target { target, args } => {
                if !self.collate_fn_kwargs.is_empty() {
                    return Err(invalid(
                        "collate_fn_kwargs",
                        format!("the {key} is a `_target_` mapping; put its arguments in the mapping, not in collate_fn_kwargs"),
                    ));
                }
                (target, args)
            }
        };
        match kwargs.remove("tokenizer") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(s)) if s == GLOBAL_TOKENIZER => {}
            Some(other) => {
                return Err(invalid(
                    if key == "collator" { "collator.tokenizer" } else { "collate_fn.tokenizer" },
                    format!("{other}: xlm's collators use the tokenizer given to setup; write `{GLOBAL_TOKENIZER}` or leave it out"),
                ))
            }
        }
        if let Some(ns) = kwargs.remove("noise_schedule") {
            if !ns.is_null() {
                log_ignored_once(
                    "collator.noise_schedule",
                    "xlm's collators add no noise; the model's noise schedule stays with the trainer",
                );
            }
        }
        Ok(ResolvedCollator { key, name, kwargs })
    }

    /// The set keys xlm accepts for xlm-core's configs but ignores, each
    /// with the reason (see the fields' docs).
    pub fn ignored_keys(&self) -> Vec<(&'static str, &'static str)> {
        const MAP_CACHE: &str = "it steers the Hugging Face `datasets.map` cache, which xlm does not have (xlm's cache is use_manual_cache / rewrite_manual_cache)";
        let mut out = Vec::new();
        let mut add = |set: bool, key: &'static str, why: &'static str| {
            if set {
                out.push((key, why));
            }
        };
        add(
            self.model_name.is_some(),
            "model_name",
            "xlm-core stores it but names no cache directory by it; the cache directory comes from full_name (and filter_suffix)",
        );
        add(
            self.preprocess_load_from_cache_file.is_some(),
            "preprocess_load_from_cache_file",
            MAP_CACHE,
        );
        add(
            self.on_the_fly_load_from_cache_file.is_some(),
            "on_the_fly_load_from_cache_file",
            MAP_CACHE,
        );
        add(
            self.load_from_cache_file.is_some(),
            "load_from_cache_file",
            MAP_CACHE,
        );
        add(
            self.dataloader_kwargs.pin_memory.is_some(),
            "dataloader_kwargs.pin_memory",
            "batches are host int64 arrays; pinning them for a device copy is the trainer's job",
        );
        add(
            self.dataloader_kwargs.persistent_workers.is_some(),
            "dataloader_kwargs.persistent_workers",
            "xlm's workers are threads; there are no worker processes to keep alive between epochs",
        );
        out
    }

    /// Logs each of [`ignored_keys`](Self::ignored_keys) once per process.
    pub(crate) fn log_ignored(&self) {
        for (key, why) in self.ignored_keys() {
            log_ignored_once(key, why);
        }
    }
}
