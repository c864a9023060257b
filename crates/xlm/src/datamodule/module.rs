//! The data module itself: managers per split, one life cycle.

use super::{DataModuleError, Split, TextDataModuleConfig};
use crate::loader::DataLoader;
use crate::manager::{DatasetManager, LoaderType, PrepareArgs, SetupArgs, Stage, Topology};
use crate::registry::Registry;
use crate::tokenizer::Tokenizer;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One manager of the module.
struct Entry {
    split: Split,
    name: String,
    manager: DatasetManager,
}

/// xlm-core's `TextDataModule`: dataset managers per split with one shared
/// tokenizer, cache directory, block size and global batch size.
pub struct TextDataModule {
    config: TextDataModuleConfig,
    entries: Vec<Entry>,
    tokenizer: Option<Arc<dyn Tokenizer>>,
    topology: Option<Topology>,
}

impl std::fmt::Debug for TextDataModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{}/{}", e.split, e.name))
            .collect();
        write!(f, "TextDataModule({})", names.join(", "))
    }
}

impl TextDataModule {
    /// Validates `config` (every manager included) and builds the managers;
    /// no I/O beyond loading the tokenizer.
    pub fn new(config: TextDataModuleConfig) -> Result<Self, DataModuleError> {
        let tokenizer = Self::new_tokenizer(&config)?;
        Self::with_parts(config, tokenizer, None)
    }

    /// Like [`new`](Self::new) with a tokenizer built by the caller (it
    /// replaces the config's `tokenizer`).
    pub fn with_tokenizer(
        config: TextDataModuleConfig,
        tokenizer: Option<Arc<dyn Tokenizer>>,
    ) -> Result<Self, DataModuleError> {
        Self::with_parts(config, tokenizer, None)
    }

    /// Like [`new`](Self::new), with every manager built over `registry`
    /// (the user's dotted functions, collators and manager targets).
    pub fn with_registry(
        config: TextDataModuleConfig,
        registry: Arc<Registry>,
    ) -> Result<Self, DataModuleError> {
        let tokenizer = Self::new_tokenizer(&config)?;
        Self::with_parts(config, tokenizer, Some(registry))
    }

    fn new_tokenizer(
        config: &TextDataModuleConfig,
    ) -> Result<Option<Arc<dyn Tokenizer>>, DataModuleError> {
        config
            .resolved_tokenizer()?
            .map(|t| {
                t.build().map_err(|e| DataModuleError::Config {
                    key: "tokenizer".into(),
                    reason: e.to_string(),
                })
            })
            .transpose()
    }

    fn with_parts(
        config: TextDataModuleConfig,
        tokenizer: Option<Arc<dyn Tokenizer>>,
        registry: Option<Arc<Registry>>,
    ) -> Result<Self, DataModuleError> {
        let mut entries = Vec::new();
        for (split, name, manager_config) in config.managers()? {
            let mut builder = DatasetManager::builder(manager_config);
            if let Some(r) = &registry {
                builder = builder.registry(r.clone());
            }
            let manager = builder.build().map_err(|e| DataModuleError::Manager {
                split,
                name: name.clone(),
                source: Box::new(e.into()),
            })?;
            entries.push(Entry {
                split,
                name,
                manager,
            });
        }
        Ok(Self {
            config,
            entries,
            tokenizer,
            topology: None,
        })
    }

    /// The config.
    pub fn config(&self) -> &TextDataModuleConfig {
        &self.config
    }

    /// The tokenizer every manager shares.
    pub fn tokenizer(&self) -> Option<&Arc<dyn Tokenizer>> {
        self.tokenizer.as_ref()
    }

    /// `dataloader_names[split][idx]`: the managers' names of `split`, in
    /// the config's order (the order of the split's loaders).
    pub fn dataloader_names(&self, split: Split) -> Vec<&str> {
        self.entries
            .iter()
            .filter(|e| e.split == split)
            .map(|e| e.name.as_str())
            .collect()
    }

    /// `dataloader_ids[split][name]`: the index of each name's loader.
    pub fn dataloader_ids(&self, split: Split) -> BTreeMap<&str, usize> {
        self.dataloader_names(split)
            .into_iter()
            .enumerate()
            .map(|(i, n)| (n, i))
            .collect()
    }

    /// Every manager: `(split, name, manager)` in config order.
    pub fn managers(&self) -> impl Iterator<Item = (Split, &str, &DatasetManager)> {
        self.entries
            .iter()
            .map(|e| (e.split, e.name.as_str(), &e.manager))
    }

    /// The manager `name` of `split`.
    pub fn manager(&self, split: Split, name: &str) -> Option<&DatasetManager> {
        self.entries
            .iter()
            .find(|e| e.split == split && e.name == name)
            .map(|e| &e.manager)
    }

    /// Whether the process at (`global_rank`, `local_rank`) runs
    /// [`prepare_data`](Self::prepare_data): global rank 0 (xlm-core's
    /// choice, one shared filesystem), or with `prepare_data_per_node` the
    /// local rank 0 of every node.
    pub fn prepares(&self, global_rank: usize, local_rank: usize) -> bool {
        if self.config.prepare_data_per_node {
            local_rank == 0
        } else {
            global_rank == 0
        }
    }

    /// Prepares every manager's cache (download, filter, preprocess, write),
    /// with `num_dataset_workers` threads; call it on the ranks
    /// [`prepares`](Self::prepares) picks, then make the others wait.
    pub fn prepare_data(&self) -> Result<(), DataModuleError> {
        self.prepare_data_with(None)
    }

    /// [`prepare_data`](Self::prepare_data) reporting each manager's
    /// progress to `progress`.
    pub fn prepare_data_with(
        &self,
        progress: Option<Arc<dyn crate::progress::ProgressSink>>,
    ) -> Result<(), DataModuleError> {
        let mut args = PrepareArgs::new(&self.config.manual_cache_dir);
        args.tokenizer = self.tokenizer.clone();
        // xlm-core: 0 workers means preprocessing in the main process.
        args.num_proc = self.config.num_dataset_workers.map(|n| n.max(1));
        args.progress = progress;
        for e in &self.entries {
            e.manager
                .prepare_data(&args)
                .map_err(|source| manager_error(e, source))?;
        }
        Ok(())
    }

    /// Sets up every manager for `stage` as rank `rank` of `world_size`
    /// (each manager sets up only for the stages it lists), and checks the
    /// global batch rule when there is a train manager.
    pub fn setup(
        &mut self,
        stage: Stage,
        rank: usize,
        world_size: usize,
    ) -> Result<(), DataModuleError> {
        let topology = Topology::new(world_size > 1, rank, world_size).map_err(|e| {
            DataModuleError::Config {
                key: "setup".into(),
                reason: e.to_string(),
            }
        })?;
        let mut args = SetupArgs::distributed(&self.config.manual_cache_dir, rank, world_size);
        args.is_ddp = world_size > 1;
        args.tokenizer = self.tokenizer.clone();
        args.block_size = self.config.block_size;
        for e in &mut self.entries {
            let Entry {
                split,
                name,
                manager,
            } = e;
            manager
                .setup(stage, &args)
                .map_err(|source| DataModuleError::Manager {
                    split: *split,
                    name: name.clone(),
                    source: Box::new(source),
                })?;
        }
        self.topology = Some(topology);
        self.accumulation_steps()?;
        Ok(())
    }

    /// Gradient accumulation steps: `global_batch_size / (batch_size x
    /// world_size)` with the train manager's batch size and the world size
    /// given to setup (xlm-core's config resolver computes the same).
    /// `None` without `global_batch_size`, a train manager or setup.
    pub fn accumulation_steps(&self) -> Result<Option<u64>, DataModuleError> {
        let (Some(global), Some(topology), Some(train)) = (
            self.config.global_batch_size,
            self.topology,
            self.entries.iter().find(|e| e.split == Split::Train),
        ) else {
            return Ok(None);
        };
        let batch_size = train.manager.config().dataloader_kwargs.batch_size as u64;
        let world_size = topology.world_size as u64;
        let per_step = batch_size.saturating_mul(world_size);
        if global == 0 || per_step == 0 || global % per_step != 0 {
            return Err(DataModuleError::GlobalBatch {
                global,
                batch_size,
                world_size,
                per_step,
            });
        }
        Ok(Some(global / per_step))
    }

    /// The train loader.
    pub fn train_dataloader(&mut self) -> Result<DataLoader, DataModuleError> {
        let mut loaders = self.dataloaders(Split::Train)?;
        loaders.pop().ok_or_else(|| self.no_manager(Split::Train))
    }

    /// The loaders of `split`, in [`dataloader_names`](Self::dataloader_names)
    /// order (one for train); empty when the split has no manager (as
    /// xlm-core's lists).
    pub fn dataloaders(&mut self, split: Split) -> Result<Vec<DataLoader>, DataModuleError> {
        if self.topology.is_none() {
            return Err(DataModuleError::NotSetUp);
        }
        let kind = match split {
            Split::Train => LoaderType::Train,
            Split::Val => LoaderType::Val,
            Split::Test => LoaderType::Test,
            Split::Predict => LoaderType::Predict,
        };
        self.entries
            .iter_mut()
            .filter(|e| e.split == split)
            .map(|e| {
                e.manager
                    .dataloader(kind)
                    .map_err(|source| DataModuleError::Manager {
                        split: e.split,
                        name: e.name.clone(),
                        source: Box::new(source),
                    })
            })
            .collect()
    }

    /// Sets the epoch of every manager (and so of every loader made from them).
    pub fn set_epoch(&self, epoch: u64) {
        for e in &self.entries {
            e.manager.set_epoch(epoch);
        }
    }

    fn no_manager(&self, split: Split) -> DataModuleError {
        let mut available: Vec<&str> = self.entries.iter().map(|e| e.split.as_str()).collect();
        available.dedup();
        DataModuleError::NoManager {
            split,
            available: if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            },
        }
    }
}

fn manager_error(e: &Entry, source: crate::Error) -> DataModuleError {
    DataModuleError::Manager {
        split: e.split,
        name: e.name.clone(),
        source: Box::new(source),
    }
}
