use crate::demo::{run, DemoOptions};
use std::path::PathBuf;

/// Arguments of `xlm demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of text rows in the built-in dataset.
    #[arg(long, default_value_t = 20_000)]
    pub rows: usize,
    /// Packed blocks per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Loader worker threads.
    #[arg(long, default_value_t = 2)]
    pub num_workers: usize,
    /// Tokens per packed block.
    #[arg(long, default_value_t = 128)]
    pub block_size: usize,
    /// Keep the cache here instead of a temporary directory.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
}

impl DemoArgs {
    /// Runs the demo and prints its report.
    pub fn run(&self) -> xlm::Result<()> {
        let r = run(&DemoOptions {
            rows: self.rows,
            batch_size: self.batch_size,
            num_workers: self.num_workers,
            block_size: self.block_size,
            cache_dir: self.cache_dir.clone(),
        })?;
        let per_s = |n: u64, d: std::time::Duration| n as f64 / d.as_secs_f64().max(1e-9);
        println!(
            "xlm demo: mem/demo/train, {} rows, tokenized by SimpleSpaceTokenizer",
            r.rows
        );
        println!(
            "  prepare  {:>8.1} ms  {} tokens cached ({:.2} M tokens/s)",
            r.prepare.as_secs_f64() * 1e3,
            r.cached_tokens,
            per_s(r.cached_tokens, r.prepare) / 1e6
        );
        println!(
            "  setup    {:>8.1} ms  (open cache, pack index, plan)",
            r.setup.as_secs_f64() * 1e3
        );
        println!(
            "  epoch    {:>8.1} ms  {} batches of packed blocks, {} examples, {} tokens",
            r.epoch.as_secs_f64() * 1e3,
            r.batches,
            r.examples,
            r.tokens
        );
        println!(
            "  rate     {:.0} examples/s, {:.0} batches/s, {:.2} M tokens/s",
            per_s(r.examples, r.epoch),
            per_s(r.batches, r.epoch),
            per_s(r.tokens, r.epoch) / 1e6
        );
        println!("  first block: {}", r.first_block);
        Ok(())
    }
}
