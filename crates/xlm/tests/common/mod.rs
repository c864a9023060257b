//! Helpers shared by the single-process tiers: a manager factory over the
//! built-in registry, per-test cache directories, and batch collectors.
#![allow(dead_code)]

use serde_json::{json, Value as Json};
use std::path::Path;
use std::sync::Arc;
use xlm::loader::DataLoader;
use xlm::manager::{DatasetManager, DatasetManagerConfig, PrepareArgs, SetupArgs, Stage};
use xlm::source::MemoryRegistry;
use xlm::tokenizer::{SimpleSpaceTokenizer, Tokenizer};

/// The test tokenizer (vocabulary w0..w49, ids 7..=56).
pub fn tokenizer() -> Arc<dyn Tokenizer> {
    Arc::new(SimpleSpaceTokenizer::test_vocab())
}

/// A config: defaults (mem/raw/train, id_tracking, batch 4) merged with `overrides`.
pub fn config(overrides: Json) -> DatasetManagerConfig {
    let mut base = json!({
        "full_name": "mem/raw/train",
        "collate_fn": "id_tracking",
        "dataloader_kwargs": {"batch_size": 4},
    });
    for (k, v) in overrides.as_object().expect("object").clone() {
        base[k] = v;
    }
    serde_json::from_value(base).expect("test config is valid")
}

/// A manager over `registry` (the built-in one when `None`).
pub fn manager(overrides: Json, registry: Option<Arc<MemoryRegistry>>) -> DatasetManager {
    let registry = registry.unwrap_or_else(|| Arc::new(MemoryRegistry::builtin()));
    DatasetManager::builder(config(overrides))
        .source(registry)
        .build()
        .expect("valid manager")
}

pub fn prepare_args(dir: &Path, load: bool) -> PrepareArgs {
    PrepareArgs {
        manual_cache_dir: dir.to_path_buf(),
        tokenizer: Some(tokenizer()),
        num_proc: None,
        progress: None,
        load,
    }
}

pub fn setup_args(
    dir: &Path,
    block_size: usize,
    is_ddp: bool,
    rank: usize,
    world_size: usize,
) -> SetupArgs {
    SetupArgs {
        manual_cache_dir: dir.to_path_buf(),
        tokenizer: Some(tokenizer()),
        block_size: Some(block_size),
        is_ddp,
        rank,
        world_size,
    }
}

/// prepare_data + setup(fit) for a single process.
pub fn ready(dm: &mut DatasetManager, dir: &Path) {
    dm.prepare_data(&prepare_args(dir, false))
        .expect("prepare_data");
    dm.setup(Stage::Fit, &setup_args(dir, 8, false, 0, 1))
        .expect("setup");
}

/// Every batch's ids.
pub fn batch_ids(loader: &DataLoader) -> Vec<Vec<i64>> {
    loader.iter().map(|b| b.expect("batch").ids).collect()
}

/// Every batch's sample indices.
pub fn batch_samples(loader: &DataLoader) -> Vec<Vec<u64>> {
    loader.iter().map(|b| b.expect("batch").samples).collect()
}

/// All ids of an epoch, flattened.
pub fn ids(loader: &DataLoader) -> Vec<i64> {
    batch_ids(loader).concat()
}

pub fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The `kind` loader of `rank` of `world` from a manager that is already
/// set up: setup is told the rank (it only records it the second time),
/// then the loader is made for it. Simulates ranks in one process.
#[allow(dead_code)]
pub fn rank_loader(
    dm: &mut DatasetManager,
    dir: &Path,
    kind: &str,
    rank: usize,
    world: usize,
) -> xlm::loader::DataLoader {
    let stage = dm.stages()[0];
    dm.setup(stage, &setup_args(dir, 8, world > 1, rank, world))
        .expect("setup");
    dm.get_dataloader(kind, world > 1, rank, world)
        .expect("get_dataloader")
}
