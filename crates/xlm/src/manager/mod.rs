//! `DatasetManager`: the life cycle of one dataset split.
//!
//! - construction ([`DatasetManager::new`]) validates the whole config,
//!   named functions and their kwargs included, before any I/O;
//! - [`prepare`](DatasetManager::prepare_data) (rank 0): download, filter,
//!   preprocess, write the cache;
//! - [`setup`](DatasetManager::setup) (every rank): open the cache, filter,
//!   shard, build the packing index;
//! - [`dataloader`](DatasetManager::dataloader): choose the plan (sampler)
//!   for the loader type and the rank given to setup
//!   ([`get_dataloader`](DatasetManager::get_dataloader) is xlm-core's
//!   call shape, checked against setup);
//! - [`set_epoch`](DatasetManager::set_epoch): reshuffle the next epoch.
//!
//! The config's `_target_` selects a [`ManagerKind`]; besides
//! `DatasetManager` and `LocalDatasetManager`, `EvalDatasetManager`
//! (map-style, never shuffled, stages validate + test, split by rank with
//! the pad rule) and `UnconditionalGenerationDatasetManager`
//! (`num_examples` empty examples on every rank, no data, every stage);
//! see the `kinds` table in the source and the README.

mod config;
mod dataloader;
mod hydra;
mod kinds;
mod pipeline;
mod prepare;
mod setup;

pub use crate::loader::DataLoader;
pub use config::{
    CollatorSpec, DataLoaderKwargs, DatasetManagerConfig, LoadKwargs, ManagerKind,
    ResolvedCollator, SplitSide, Stage, TrainTestSplit,
};
pub use dataloader::{LoaderType, Topology};
pub use hydra::{
    check_unresolved, Unresolved, UnresolvedKind, GLOBAL_NOISE_SCHEDULE, GLOBAL_TOKENIZER,
};
pub use kinds::{EmptyDatasetSpec, DEFAULT_EMPTY_DATASET};
pub use pipeline::Pipeline;

use crate::registry::{Kwargs, Registry};
use crate::source::{DataFiles, FullName, LocalFiles, LocalFormat, MemoryRegistry, Source};
use crate::tokenizer::Tokenizer;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// An invalid configuration, found at construction.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config does not parse or does not match the schema.
    #[error("invalid DatasetManager config: {0}")]
    Json(String),
    /// `filter_fn` is set without `filter_suffix`.
    #[error("filter_fn `{0}` needs filter_suffix: the filtered data is cached under its own directory name")]
    FilterWithoutSuffix(String),
    /// A group processor is set without `iterable_dataset_shards`.
    #[error("on_the_fly_group_processor `{0}` needs iterable_dataset_shards: a group processor changes the number of examples, which only iterable mode supports")]
    GroupWithoutShards(String),
    /// Both a processor and a group processor are set.
    #[error("on_the_fly_processor `{0}` and on_the_fly_group_processor `{1}` cannot both be set; the group processor subsumes per-example processing")]
    ProcessorAndGroup(String, String),
    /// `make_infinite` is set without `iterable_dataset_shards`.
    #[error(
        "make_infinite needs iterable_dataset_shards (only an iterable stream can repeat forever)"
    )]
    InfiniteWithoutShards,
    /// A config value is invalid.
    #[error("{key}: {reason}")]
    Invalid {
        /// The config key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A named function or its kwargs are invalid.
    #[error(transparent)]
    Function(#[from] crate::registry::ProcessError),
    /// `full_name` (or `full_name_debug`) is invalid.
    #[error(transparent)]
    FullName(#[from] crate::source::SourceError),
    /// A Hydra leftover (`${...}`, `???`, `defaults`), naming its key path.
    #[error(transparent)]
    Unresolved(#[from] Unresolved),
    /// `_target_` names no manager kind xlm knows or a user registered.
    #[error("_target_: {0}")]
    Target(String),
    /// A key the manager's kind does not take (xlm-core's class has no such
    /// argument), set to something other than its default.
    #[error("{key}: {kind} does not take it: {reason}")]
    NotForKind {
        /// The config key.
        key: String,
        /// The manager's kind.
        kind: ManagerKind,
        /// Why, and what to do instead.
        reason: String,
    },
    /// A nested config value is invalid (e.g. `dataset_kwargs.empty_text`).
    #[error("{key}: {reason}")]
    InvalidKey {
        /// The key path.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The life cycle was used out of order or with bad arguments.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// A train loader of a kind that has none (xlm-core raises too).
    #[error("{full_name}: {kind} has no train loader (xlm-core's class refuses it too); use it for val, test or predict")]
    NoTrainLoader {
        /// The dataset split.
        full_name: String,
        /// The manager's kind.
        kind: ManagerKind,
    },
    /// `get_dataloader` was called before `setup`.
    #[error(
        "{full_name}: get_dataloader before setup; call setup with a stage in {stages:?} first"
    )]
    NotSetUp {
        /// The dataset split.
        full_name: String,
        /// The stages that would have set it up.
        stages: Vec<Stage>,
    },
    /// An unknown dataloader type.
    #[error("invalid dataloader type `{0}`; expected train, val, test or predict")]
    LoaderType(String),
    /// The rank is not below the world size.
    #[error("rank {rank} is not below world_size {world_size}")]
    Rank {
        /// The rank.
        rank: usize,
        /// The world size.
        world_size: usize,
    },
    /// `setup` failed.
    #[error("{full_name}: {reason}")]
    Setup {
        /// The dataset split.
        full_name: String,
        /// Why it failed.
        reason: String,
    },
    /// `get_dataloader` was given another rank or world size than `setup`.
    #[error("{full_name}: get_dataloader was called with {given} but setup was given {setup}; pass setup the rank and world size, then call dataloader(kind)")]
    TopologyMismatch {
        /// The dataset split.
        full_name: String,
        /// What `get_dataloader` was given.
        given: String,
        /// What `setup` was given.
        setup: String,
    },
}

/// Arguments of [`DatasetManager::prepare_data`].
#[derive(Clone, Default)]
pub struct PrepareArgs {
    /// Base directory of the cache.
    pub manual_cache_dir: PathBuf,
    /// Tokenizer for preprocess functions.
    pub tokenizer: Option<Arc<dyn Tokenizer>>,
    /// Parallelism hint for preprocessing.
    pub num_proc: Option<usize>,
    /// Return the dataset when the cache already exists.
    pub load: bool,
    /// Where to report progress (`None`: silent); e.g.
    /// [`LogProgress`](crate::progress::LogProgress).
    pub progress: Option<Arc<dyn crate::progress::ProgressSink>>,
}

/// Arguments of [`DatasetManager::setup`].
#[derive(Clone)]
pub struct SetupArgs {
    /// Base directory of the cache.
    pub manual_cache_dir: PathBuf,
    /// Tokenizer for processors, packers and collators.
    pub tokenizer: Option<Arc<dyn Tokenizer>>,
    /// Sequence length for group processors and padding collators.
    pub block_size: Option<usize>,
    /// Distributed run.
    pub is_ddp: bool,
    /// Global rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
}

impl SetupArgs {
    /// Single-process arguments.
    pub fn single(manual_cache_dir: &Path) -> Self {
        Self {
            manual_cache_dir: manual_cache_dir.to_path_buf(),
            tokenizer: None,
            block_size: None,
            is_ddp: false,
            rank: 0,
            world_size: 1,
        }
    }

    /// Arguments for `rank` of `world_size` data-parallel ranks.
    pub fn distributed(manual_cache_dir: &Path, rank: usize, world_size: usize) -> Self {
        Self {
            is_ddp: true,
            rank,
            world_size,
            ..Self::single(manual_cache_dir)
        }
    }

    /// With a tokenizer for processors, packers and collators.
    pub fn with_tokenizer(mut self, tokenizer: Arc<dyn Tokenizer>) -> Self {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// With the sequence length for packing and padding collators.
    pub fn with_block_size(mut self, block_size: usize) -> Self {
        self.block_size = Some(block_size);
        self
    }
}

impl PrepareArgs {
    /// Arguments that write (or find) the cache under `manual_cache_dir`.
    pub fn new(manual_cache_dir: &Path) -> Self {
        Self {
            manual_cache_dir: manual_cache_dir.to_path_buf(),
            ..Self::default()
        }
    }

    /// With a tokenizer for preprocess functions.
    pub fn with_tokenizer(mut self, tokenizer: Arc<dyn Tokenizer>) -> Self {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// With `num_proc` preprocessing threads.
    pub fn with_num_proc(mut self, num_proc: usize) -> Self {
        self.num_proc = Some(num_proc);
        self
    }

    /// Returning the dataset when the cache already exists.
    pub fn with_load(mut self, load: bool) -> Self {
        self.load = load;
        self
    }

    /// Reporting progress to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn crate::progress::ProgressSink>) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// Most shards an iterable dataset may be split into.
pub const MAX_SHARDS: usize = 1 << 20;

/// Builds a [`DatasetManager`] with a custom registry or source.
pub struct DatasetManagerBuilder {
    config: DatasetManagerConfig,
    registry: Option<Arc<Registry>>,
    source: Option<Arc<dyn Source>>,
}

impl DatasetManagerBuilder {
    /// Uses `registry` for named functions instead of the built-ins.
    pub fn registry(mut self, registry: Arc<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Uses `source` instead of the one the config selects.
    pub fn source(mut self, source: Arc<dyn Source>) -> Self {
        self.source = Some(source);
        self
    }

    /// Validates the config and builds the manager.
    pub fn build(self) -> Result<DatasetManager, ConfigError> {
        let registry = self
            .registry
            .unwrap_or_else(|| Arc::new(Registry::builtin()));
        let c = &self.config;
        let kind = manager_kind(c, &registry)?;
        kinds::check_keys(c, kind)?;
        validate(c, &registry, kind)?;
        c.log_ignored();
        let stages = c.effective_stages(kind);
        let (full_name, source) = if kind == ManagerKind::UnconditionalGeneration {
            // No data: a name for messages only, and a source never read.
            let source = self
                .source
                .unwrap_or_else(|| Arc::new(MemoryRegistry::new()));
            (FullName::parse(UNCONDITIONAL_NAME)?, source)
        } else {
            let name = if c.debug_overfit {
                c.full_name_debug.clone().ok_or(ConfigError::Invalid {
                    key: "full_name_debug",
                    reason: "debug_overfit is on but full_name_debug is not set".into(),
                })?
            } else {
                c.full_name.clone()
            };
            let full_name = parse_full_name(kind, &name)?;
            parse_full_name(kind, &c.full_name)?;
            if let (Some(i), Some(_)) = (&full_name.instruction, &c.train_test_split) {
                return Err(ConfigError::Invalid {
                    key: "train_test_split",
                    reason: format!(
                        "cannot be combined with the split instruction `{i}` of `{full_name}`: train_test_split always splits the whole `train` split; use one or the other"
                    ),
                });
            }
            let source = match self.source {
                Some(s) => s,
                None => default_source(c, &full_name, &name)?,
            };
            (full_name, source)
        };
        let mut dm = DatasetManager {
            config: self.config,
            kind,
            stages,
            full_name,
            registry,
            source,
            pipeline: None,
            topology: None,
            epoch: Arc::new(AtomicU64::new(0)),
            warnings: Vec::new(),
        };
        if let Some(w) = prepare::ignored_column_lists(&dm.config) {
            dm.warn(w);
        }
        Ok(dm)
    }
}

/// The name an unconditional-generation manager goes by in messages (it
/// reads no data; xlm-core's `name` is `empty`).
const UNCONDITIONAL_NAME: &str = "unconditional_generation/DefaultEmptyDataset/empty";

/// xlm-core's data module class: a config of it is not a manager's.
const TEXT_DATA_MODULE: &str = "xlm.datamodule.TextDataModule";

/// The kind `_target_` selects: xlm-core's classes, then the targets
/// registered in `r`; without `_target_`, `Local` when `ds_type` is set,
/// else `Default`. Also checks the keys each kind needs or refuses.
fn manager_kind(c: &DatasetManagerConfig, r: &Registry) -> Result<ManagerKind, ConfigError> {
    let Some(t) = &c.target else {
        return Ok(if c.ds_type.is_some() {
            ManagerKind::Local
        } else {
            ManagerKind::Default
        });
    };
    let kind = match ManagerKind::from_target(t).or_else(|| r.manager_target(t)) {
        Some(k) => k,
        None if t == TEXT_DATA_MODULE => {
            return Err(ConfigError::Target(format!(
                "`{t}` is the data module, not a dataset manager; give this config to xlm::datamodule (TextDataModule), or give the manager one of {}",
                known_targets()
            )))
        }
        None => {
            return Err(ConfigError::Target(format!(
                "`{t}` is not a dataset manager xlm knows ({}); xlm cannot import Python classes: if it behaves as one of these, register it with Registry::register_manager_target(\"{t}\", ManagerKind::...) and build with DatasetManager::builder(config).registry(..)",
                known_targets()
            )))
        }
    };
    let local_keys = c.ds_type.is_some() || c.data_files.is_some() || c.load_kwargs.is_some();
    match kind {
        ManagerKind::Local if c.ds_type.is_none() => Err(ConfigError::Invalid {
            key: "ds_type",
            reason: format!("`{t}` (a LocalDatasetManager) needs ds_type: csv, or jsonl/json"),
        }),
        ManagerKind::Default if local_keys => Err(ConfigError::Invalid {
            key: "ds_type",
            reason: format!(
                "`{t}` reads the Hugging Face Hub; local files (ds_type, data_files, load_kwargs) need `_target_: xlm.datamodule.LocalDatasetManager`"
            ),
        }),
        k => Ok(k),
    }
}

fn known_targets() -> String {
    ManagerKind::TARGETS
        .iter()
        .map(|(t, _)| *t)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `full_name` for `kind`. Local files take a filesystem path of any depth
/// (the last segment is the split): 3 or 4 segments parse as for the Hub
/// (so cache names match xlm-core's), others keep the whole path as the
/// `repo` part; `.`-only paths are padded, `..` is written `__` so the cache
/// stays under the cache directory.
fn parse_full_name(kind: ManagerKind, name: &str) -> Result<FullName, ConfigError> {
    if kind != ManagerKind::Local {
        return Ok(FullName::parse(name)?);
    }
    let segs: Vec<&str> = name
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .map(|s| if s == ".." { "__" } else { s })
        .collect();
    if segs.is_empty() {
        return Ok(FullName::parse(name)?);
    }
    let n = segs.len();
    if (3..=4).contains(&n) {
        return Ok(FullName::parse(&segs.join("/"))?);
    }
    let dataset = if n >= 2 { segs[n - 2] } else { "." };
    let mut f = FullName::parse(&format!("./{dataset}/{}", segs[n - 1]))?;
    if n > 4 {
        f.repo = segs[..n - 2].join("/");
    }
    Ok(f)
}

/// Local files from `data_files` or `load_kwargs.data_files` (one meaning;
/// both set is an error).
fn local_data_files(c: &DatasetManagerConfig) -> Result<Option<DataFiles>, ConfigError> {
    let nested = c.load_kwargs.as_ref().and_then(|l| l.data_files.clone());
    match (&c.data_files, nested) {
        (Some(_), Some(_)) => Err(ConfigError::Invalid {
            key: "data_files",
            reason: "set both at the top level and in load_kwargs; they mean the same, keep one"
                .into(),
        }),
        (Some(f), None) => Ok(Some(f.clone())),
        (None, f) => Ok(f),
    }
}

fn default_source(
    c: &DatasetManagerConfig,
    name: &FullName,
    raw_name: &str,
) -> Result<Arc<dyn Source>, ConfigError> {
    match (&c.ds_type, local_data_files(c)?) {
        (Some(fmt), Some(files)) => Ok(Arc::new(LocalFiles::new(*fmt, files))),
        (Some(fmt), None) => {
            // xlm-core: `Path(full_name).parent / f"{split}.csv"`.
            let ext = match fmt {
                LocalFormat::Csv => "csv",
                LocalFormat::Jsonl => "jsonl",
            };
            let parent = Path::new(raw_name).parent().unwrap_or(Path::new(""));
            // Every split the name reads (`train[:5]+test[:5]` reads two
            // files), each `<parent>/<split>.<ext>`.
            let mut splits = vec![name.split.clone()];
            if let Some(instruction) = &name.instruction {
                splits.extend(instruction.parts().iter().map(|p| p.split.clone()));
            }
            let files = splits
                .into_iter()
                .map(|split| {
                    let file = parent.join(format!("{split}.{ext}"));
                    (split, crate::source::OneOrMany::One(file))
                })
                .collect();
            Ok(Arc::new(LocalFiles::new(*fmt, DataFiles::PerSplit(files))))
        }
        (None, Some(_)) => Err(ConfigError::Invalid {
            key: "ds_type",
            reason: "data_files is set, so ds_type must say their format (jsonl, json or csv)"
                .into(),
        }),
        (None, None) if name.repo == "mem" => Ok(Arc::new(MemoryRegistry::builtin())),
        #[cfg(feature = "hub")]
        (None, None) => Ok(Arc::new(crate::source::HubSource::from_env())),
        #[cfg(not(feature = "hub"))]
        (None, None) => Err(ConfigError::Invalid {
            key: "full_name",
            reason: format!(
                "`{}` would come from the Hugging Face Hub, but this xlm was built without the `hub` feature; enable it, or set ds_type + data_files for local files",
                name
            ),
        }),
    }
}

fn validate(c: &DatasetManagerConfig, r: &Registry, kind: ManagerKind) -> Result<(), ConfigError> {
    // The suffix names the filtered cache. xlm-core's eval manager has no
    // cache, so an eval config that does not cache needs none.
    let eval = kind == ManagerKind::Eval;
    if let (Some(f), None) = (&c.filter_fn, &c.filter_suffix) {
        if !eval || c.use_manual_cache {
            return Err(ConfigError::FilterWithoutSuffix(f.clone()));
        }
    }
    if let (Some(g), None) = (&c.on_the_fly_group_processor, c.iterable_dataset_shards) {
        return Err(ConfigError::GroupWithoutShards(g.clone()));
    }
    if let (Some(p), Some(g)) = (&c.on_the_fly_processor, &c.on_the_fly_group_processor) {
        return Err(ConfigError::ProcessorAndGroup(p.clone(), g.clone()));
    }
    if c.make_infinite && c.iterable_dataset_shards.is_none() {
        return Err(ConfigError::InfiniteWithoutShards);
    }
    if c.iterable_dataset_shards
        .is_some_and(|k| k == 0 || k > MAX_SHARDS)
    {
        return Err(ConfigError::Invalid {
            key: "iterable_dataset_shards",
            reason: format!("must be between 1 and {MAX_SHARDS}"),
        });
    }
    let loader = crate::loader::LoaderOptions {
        batch_size: c.dataloader_kwargs.batch_size,
        drop_last: c.dataloader_kwargs.drop_last,
        num_workers: c.dataloader_kwargs.num_workers,
        prefetch: c.dataloader_kwargs.prefetch_factor,
    };
    if let Err(crate::loader::LoaderError::Invalid { key, reason, .. }) = loader.validate() {
        return Err(ConfigError::Invalid {
            key: match key {
                "batch_size" => "dataloader_kwargs.batch_size",
                "num_workers" => "dataloader_kwargs.num_workers",
                _ => "dataloader_kwargs.prefetch_factor",
            },
            reason: reason.into(),
        });
    }
    if let Some(s) = &c.train_test_split {
        if !(s.size > 0.0 && (s.size < 1.0 || s.size.fract() == 0.0)) {
            return Err(ConfigError::Invalid {
                key: "train_test_split.size",
                reason: format!(
                    "{} is neither a fraction in (0, 1) nor a whole row count",
                    s.size
                ),
            });
        }
    }
    let empty = Kwargs::new();
    if let Some(f) = &c.filter_fn {
        r.filter("filter_fn", f, &empty)?;
    }
    if let Some(f) = &c.on_the_fly_filter_fn {
        r.filter("on_the_fly_filter_fn", f, &empty)?;
    }
    if let Some(f) = &c.preprocess_function {
        r.preprocess("preprocess_function", f, &c.preprocess_function_kwargs)?;
    }
    if let Some(f) = &c.on_the_fly_processor {
        r.processor("on_the_fly_processor", f, &c.on_the_fly_processor_kwargs)?;
    }
    if let Some(f) = &c.on_the_fly_group_processor {
        let kw = &c.on_the_fly_group_processor_kwargs;
        match r.replicator("on_the_fly_group_processor", f, kw)? {
            Some(copies) => {
                copies(kw)?;
            }
            None => {
                r.group("on_the_fly_group_processor", f, kw)?;
            }
        }
    }
    let collator = c.resolved_collator()?;
    r.collator(collator.key, &collator.name, &collator.kwargs)?;
    Ok(())
}

/// The life cycle of one dataset split.
pub struct DatasetManager {
    config: DatasetManagerConfig,
    kind: ManagerKind,
    stages: Vec<Stage>,
    full_name: FullName,
    registry: Arc<Registry>,
    source: Arc<dyn Source>,
    pipeline: Option<Arc<Pipeline>>,
    topology: Option<Topology>,
    epoch: Arc<AtomicU64>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for DatasetManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatasetManager(full_name={})", self.full_name)
    }
}

impl DatasetManager {
    /// Validates `config` and builds a manager with the built-in registry and
    /// the source the config selects.
    pub fn new(config: DatasetManagerConfig) -> Result<Self, ConfigError> {
        Self::builder(config).build()
    }

    /// A builder, to pass a custom registry or source.
    pub fn builder(config: DatasetManagerConfig) -> DatasetManagerBuilder {
        DatasetManagerBuilder {
            config,
            registry: None,
            source: None,
        }
    }

    /// The config.
    pub fn config(&self) -> &DatasetManagerConfig {
        &self.config
    }

    /// The kind of manager the config's `_target_` selects.
    pub fn kind(&self) -> ManagerKind {
        self.kind
    }

    /// The stages [`setup`](Self::setup) builds the sample space for:
    /// [`DatasetManagerConfig::effective_stages`] of the manager's kind.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The full name in use (`full_name_debug` in debug-overfit mode; a
    /// fixed placeholder for the unconditional-generation kind, which reads
    /// no data).
    pub fn full_name(&self) -> &FullName {
        &self.full_name
    }

    /// Iterable mode (`iterable_dataset_shards` set).
    pub fn is_iterable(&self) -> bool {
        self.config.iterable_dataset_shards.is_some()
    }

    /// True once `setup` has built the pipeline.
    pub fn is_set_up(&self) -> bool {
        self.pipeline.is_some()
    }

    /// The set-up pipeline (sample space), if any.
    pub fn pipeline(&self) -> Option<&Arc<Pipeline>> {
        self.pipeline.as_ref()
    }

    /// Warnings issued so far (also logged with `log::warn!`).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn warn(&mut self, msg: String) {
        log::warn!("{msg}");
        self.warnings.push(msg);
    }

    /// Cache directory: `<dir>/<full_name>`, or with a filter suffix
    /// `<dir>/<repo>/<dataset>[_<config>]_<suffix>/<split>`. A split
    /// instruction is part of the name as written (`<dir>/org/ds/train[:-10]`),
    /// so two slices of a split never share a cache.
    pub fn cache_dir(&self, manual_cache_dir: &Path) -> PathBuf {
        let n = &self.full_name;
        match &self.config.filter_suffix {
            None => manual_cache_dir.join(n.to_string()),
            Some(suffix) => {
                let ds = match &n.config {
                    Some(c) => format!("{}_{c}_{suffix}", n.dataset),
                    None => format!("{}_{suffix}", n.dataset),
                };
                manual_cache_dir
                    .join(&n.repo)
                    .join(ds)
                    .join(n.split_segment())
            }
        }
    }

    /// Sets the epoch of every loader of this manager (reshuffles the next epoch).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }
}
