//! `xlm demo`: the whole life cycle on a built-in synthetic text dataset,
//! with no network: tokenize and cache it, set it up as a packed iterable
//! dataset, and iterate one epoch with worker threads.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xlm::data::Table;
use xlm::manager::{DatasetManager, DatasetManagerConfig, PrepareArgs, SetupArgs, Stage};
use xlm::plan::Rng;
use xlm::source::{synthetic_text_table, MemoryRegistry};
use xlm::tokenizer::{SimpleSpaceTokenizer, Tokenizer};

/// Options of the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Number of text rows.
    pub rows: usize,
    /// Examples (packed blocks) per batch.
    pub batch_size: usize,
    /// Worker threads.
    pub num_workers: usize,
    /// Tokens per packed block.
    pub block_size: usize,
    /// Cache directory (a temporary one when `None`).
    pub cache_dir: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            rows: 20_000,
            batch_size: 32,
            num_workers: 2,
            block_size: 128,
            cache_dir: None,
        }
    }
}

/// What the demo measured.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// Rows prepared.
    pub rows: usize,
    /// Tokens in the cache.
    pub cached_tokens: u64,
    /// Time to tokenize and write the cache.
    pub prepare: Duration,
    /// Time to open the cache and build the packing index.
    pub setup: Duration,
    /// Packed blocks (samples) yielded.
    pub examples: u64,
    /// Batches yielded.
    pub batches: u64,
    /// Token ids yielded (input_ids only).
    pub tokens: u64,
    /// Time of the epoch.
    pub epoch: Duration,
    /// The first block of the first batch, decoded.
    pub first_block: String,
}

/// Deterministic sentences over the test vocabulary, 8 to 200 words each.
pub fn demo_table(rows: usize) -> Table {
    let lengths = (0..rows).map(|i| {
        (
            i as i64,
            8 + Rng::new(&[0xde40, i as u64]).below(193) as usize,
        )
    });
    synthetic_text_table(0xde41, lengths)
}

/// Runs the demo.
pub fn run(opts: &DemoOptions) -> xlm::Result<DemoReport> {
    let tmp;
    let cache_dir = match &opts.cache_dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()
                .map_err(|e| xlm::cache::CacheError::io(std::env::temp_dir(), e))?;
            tmp.path().to_path_buf()
        }
    };
    let registry = MemoryRegistry::new();
    registry.insert("mem/demo/train", demo_table(opts.rows));
    let config: DatasetManagerConfig = serde_json::from_value(serde_json::json!({
        "full_name": "mem/demo/train",
        "preprocess_function": "tokenize",
        "columns_to_remove": ["text"],
        "iterable_dataset_shards": 8,
        "shuffle_buffer_size": 1024,
        "on_the_fly_group_processor": "pack_sequences",
        "on_the_fly_group_processor_kwargs": {"use_bos": true, "drop_last": true},
        "dataloader_kwargs": {"batch_size": opts.batch_size, "num_workers": opts.num_workers},
        "rewrite_manual_cache": true,
    }))
    .expect("demo config is valid");
    let tokenizer: Arc<dyn Tokenizer> = Arc::new(SimpleSpaceTokenizer::test_vocab());
    let mut dm = DatasetManager::builder(config)
        .source(Arc::new(registry))
        .build()?;

    let t = Instant::now();
    let prepared = dm
        .prepare_data(&PrepareArgs {
            manual_cache_dir: cache_dir.clone(),
            tokenizer: Some(tokenizer.clone()),
            num_proc: None,
            progress: None,
            load: true,
        })?
        .expect("a fresh cache is returned");
    let prepare = t.elapsed();
    let cached_tokens = prepared.list_elements("token_ids");

    let t = Instant::now();
    dm.setup(
        Stage::Fit,
        &SetupArgs {
            tokenizer: Some(tokenizer.clone()),
            block_size: Some(opts.block_size),
            ..SetupArgs::single(&cache_dir)
        },
    )?;
    let loader = dm.get_dataloader("train", false, 0, 1)?;
    let setup = t.elapsed();

    let t = Instant::now();
    let (mut examples, mut batches, mut tokens) = (0u64, 0u64, 0u64);
    let mut first_block = String::new();
    for batch in &loader {
        let batch = batch?;
        let ids = batch
            .get("input_ids")
            .expect("packed blocks have input_ids");
        if batches == 0 {
            let row: Vec<u32> = ids.row(0).iter().map(|&x| x as u32).collect();
            first_block = tokenizer.decode(&row);
        }
        batches += 1;
        examples += ids.shape[0] as u64;
        tokens += ids.data.len() as u64;
    }
    Ok(DemoReport {
        rows: opts.rows,
        cached_tokens,
        prepare,
        setup,
        examples,
        batches,
        tokens,
        epoch: t.elapsed(),
        first_block,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_runs_end_to_end() {
        let r = run(&DemoOptions {
            rows: 300,
            ..Default::default()
        })
        .unwrap();
        assert!(r.batches > 0);
        assert_eq!(r.tokens, r.examples * 128);
        assert!(r.first_block.contains("[EOS]"));
    }
}
