//! `TextDataModule`: the dataset managers of a training run, per split,
//! sharing one tokenizer, one `manual_cache_dir`, one `block_size` and one
//! `global_batch_size` — xlm-core's data module, with its config keys.
//!
//! ```text
//! dataset_managers:            split -> name -> manager config (config order kept)
//!   train: {lm1b: {...}}       at most one train manager
//!   val:   {lm1b: {...}, owt: {...}}
//! ```
//!
//! Life cycle: [`prepare_data`](TextDataModule::prepare_data) (every
//! manager; one rank per filesystem, see [`TextDataModule::prepares`]),
//! [`setup`](TextDataModule::setup) (rank and world size threaded into
//! every manager), then [`train_dataloader`](TextDataModule::train_dataloader)
//! and the lists of the other splits, and [`set_epoch`](TextDataModule::set_epoch)
//! fanned out to every manager.
//!
//! This module sits above `manager`: it wraps [`crate::Error`] in its own
//! [`DataModuleError`] and nothing below imports it.

mod config;
mod module;

pub use config::{Split, TextDataModuleConfig, TEXT_DATA_MODULE_TARGET};
pub use module::TextDataModule;

use thiserror::Error;

/// Errors of the data module; each names the split, manager or key.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataModuleError {
    /// A key of the data module's config is invalid.
    #[error("datamodule config: {key}: {reason}")]
    Config {
        /// The key path (`dataset_managers.train.lm1b`, `global_batch_size`).
        key: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A manager failed (construction, prepare, setup, loader).
    #[error("{split} dataset manager `{name}`: {source}")]
    Manager {
        /// Its split.
        split: Split,
        /// Its name in `dataset_managers.<split>`.
        name: String,
        /// What failed.
        #[source]
        source: Box<crate::Error>,
    },
    /// `global_batch_size` is not a positive multiple of the batch over all ranks.
    #[error("global_batch_size {global} is not a positive multiple of batch_size {batch_size} x world_size {world_size} = {per_step}; gradient accumulation needs global_batch_size / (batch_size x world_size) to be a positive integer: set global_batch_size to a multiple of {per_step}, or change the train manager's dataloader_kwargs.batch_size")]
    GlobalBatch {
        /// `global_batch_size`.
        global: u64,
        /// The train manager's `dataloader_kwargs.batch_size`.
        batch_size: u64,
        /// Ranks.
        world_size: u64,
        /// `batch_size x world_size`.
        per_step: u64,
    },
    /// A loader was asked for before `setup`.
    #[error("the data module is not set up: call setup(stage, rank, world_size) first")]
    NotSetUp,
    /// A split has no train manager, or the requested one does not exist.
    #[error("no {split} dataset manager in dataset_managers (it has: {available})")]
    NoManager {
        /// The split asked for.
        split: Split,
        /// The splits configured.
        available: String,
    },
}
