//! xlm: a data layer for training language models on one process, many
//! processes on one machine, or many machines under SLURM.
//!
//! The crate follows the life cycle of a training dataset; each stage is a
//! module that owns one thing:
//!
//! | stage | module | owns |
//! |---|---|---|
//! | data model | [`data`] | named columns (int64, token lists, strings) and examples |
//! | download | [`source`] | where raw rows come from (in-memory registry, local files) |
//! | tokenize | [`tokenizer`] | text to token ids ([`tokenizer::SimpleSpaceTokenizer`], any `tokenizer.json`) |
//! | functions | [`registry`] | named preprocess functions, filters, processors, packers, collators |
//! | collation | [`collate`] | examples to a [`Batch`] (depends on the data model only) |
//! | cache | [`cache`] | the atomic, memory-mapped on-disk cache |
//! | data module | [`datamodule`] | `TextDataModule`: managers per split, one tokenizer, cache dir, block size, global batch |
//! | life cycle | [`manager`] | `DatasetManager`: prepare_data, setup, dataloader, set_epoch |
//! | plan | [`plan`] | which sample each rank yields at each step, as a pure function |
//! | loader | [`loader`] | worker threads and [`Batch`]es in a fixed order, resumable |
//!
//! The design rule that everything else follows: sampling is a pure function
//! of (number of samples, seed, epoch, world size, rank, mode). Every rank
//! therefore knows, before reading a byte, exactly which samples it will
//! yield, which is what makes per-rank batch counts equal in every mode.

#![deny(missing_docs)]

pub mod cache;
pub mod collate;
pub mod data;
pub mod datamodule;
pub mod error;
pub mod hash;
#[cfg_attr(
    not(any(feature = "hub", feature = "tokenizer-json")),
    allow(dead_code)
)]
mod hf_env;
pub mod loader;
pub mod manager;
pub mod plan;
pub mod progress;
pub mod registry;
pub mod source;
pub mod tokenizer;

pub use error::{Error, Result};
pub use loader::{Batch, DataLoader};
pub use manager::{DatasetManager, DatasetManagerConfig, PrepareArgs, SetupArgs, Stage};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
