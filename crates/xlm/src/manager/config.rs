use crate::plan::Remainder;
use crate::registry::Kwargs;
use crate::source::{DataFiles, LocalFormat};
use serde::{Deserialize, Serialize};

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
    /// Batches each worker prepares ahead (default 2).
    #[serde(default = "two")]
    pub prefetch_factor: usize,
}

impl Default for DataLoaderKwargs {
    fn default() -> Self {
        Self {
            batch_size: 1,
            num_workers: 0,
            shuffle: None,
            drop_last: false,
            prefetch_factor: 2,
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
fn default_stages() -> Vec<Stage> {
    vec![Stage::Fit, Stage::Validate]
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
}

/// The whole configuration of a `DatasetManager`, with the Python project's
/// key names so configs port across. Unknown keys are errors that name the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetManagerConfig {
    /// xlm-core's class (`xlm.datamodule.EvalDatasetManager`, ...); selects
    /// the [`ManagerKind`].
    #[serde(rename = "_target_", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `repo/dataset/split` or `repo/dataset/config/split` (empty only for
    /// the unconditional-generation kind, which reads no data).
    #[serde(default)]
    pub full_name: String,
    /// Unconditional generation: examples per rank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_examples: Option<usize>,
    /// Unconditional generation: the dataset class (only
    /// `xlm.datamodule.DefaultEmptyDataset` is built in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_constructor_str: Option<String>,
    /// Unconditional generation: the dataset class's kwargs.
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
    /// Collator name (default `default`).
    #[serde(default = "default_collator")]
    pub collate_fn: String,
    /// Collator kwargs.
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
    /// Group processor (packing); needs `iterable_dataset_shards`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_the_fly_group_processor: Option<String>,
    /// Its kwargs.
    #[serde(default)]
    pub on_the_fly_group_processor_kwargs: Kwargs,
    /// Input columns the group step drops; packed blocks carry only the
    /// packer's outputs, so these must merely exist in the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_the_fly_group_processor_remove_columns: Option<Vec<String>>,
    /// Stages `setup` acts on (default fit, validate).
    #[serde(default = "default_stages")]
    pub stages: Vec<Stage>,
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
    /// Local files: their format (`jsonl`/`json` or `csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ds_type: Option<LocalFormat>,
    /// Local files: one path, a list, or a map from split to path(s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_files: Option<DataFiles>,
}

fn default_collator() -> String {
    "default".into()
}

impl DatasetManagerConfig {
    /// A config with defaults for everything but `full_name`.
    pub fn new(full_name: &str) -> Self {
        serde_json::from_value(serde_json::json!({ "full_name": full_name }))
            .expect("defaults deserialise")
    }

    /// Parses a JSON config; errors name the unknown or invalid key.
    pub fn from_json(text: &str) -> Result<Self, super::ConfigError> {
        serde_json::from_str(text).map_err(|e| super::ConfigError::Json(e.to_string()))
    }

    /// Parses a YAML config (the same keys; e.g. a Hydra `dataset_manager` node).
    #[cfg(feature = "yaml")]
    pub fn from_yaml(text: &str) -> Result<Self, super::ConfigError> {
        serde_yaml_ng::from_str(text).map_err(|e| super::ConfigError::Json(e.to_string()))
    }
}
