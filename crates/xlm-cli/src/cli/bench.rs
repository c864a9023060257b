use crate::bench::{loader_phase, run, BenchOptions, LoaderReport};
use std::path::{Path, PathBuf};

/// Arguments of `xlm bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Rows of the synthetic dataset.
    #[arg(long, default_value_t = 200_000)]
    pub rows: usize,
    /// Token ids per row (the maximum when --min-tokens is given).
    #[arg(long, default_value_t = 128)]
    pub tokens: usize,
    /// Make row lengths uniform in MIN..=--tokens.
    #[arg(long)]
    pub min_tokens: Option<usize>,
    /// Examples per batch.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Shards of the iterable and packed modes.
    #[arg(long, default_value_t = 8)]
    pub shards: usize,
    /// Shuffle buffer of the iterable and packed modes.
    #[arg(long, default_value_t = 1024)]
    pub shuffle_buffer: usize,
    /// Block size of the packed mode.
    #[arg(long, default_value_t = 128)]
    pub block_size: usize,
    /// Worker counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    pub workers: Vec<usize>,
    /// Threads for prepare (default: all cores).
    #[arg(long)]
    pub num_proc: Option<usize>,
    /// Epochs timed per mode and worker count (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Keep the caches here instead of a temporary directory.
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Internal: run only the loader phase over --cache-dir and print its JSON.
    #[arg(long, hide = true)]
    pub loader_only: bool,
}

impl BenchArgs {
    fn options(&self) -> BenchOptions {
        BenchOptions {
            rows: self.rows,
            tokens: self.tokens,
            min_tokens: self.min_tokens,
            batch_size: self.batch_size,
            shards: self.shards,
            shuffle_buffer: self.shuffle_buffer,
            block_size: self.block_size,
            workers: self.workers.clone(),
            num_proc: self.num_proc,
            repeats: self.repeats,
        }
    }

    /// Runs the benchmark and prints it.
    pub fn run(&self) -> anyhow::Result<()> {
        let o = self.options();
        if self.loader_only {
            let dir = self
                .cache_dir
                .as_deref()
                .ok_or_else(|| anyhow::anyhow!("--loader-only needs --cache-dir"))?;
            println!("{}", serde_json::to_string(&loader_phase(&o, dir)?)?);
            return Ok(());
        }
        let child = |dir: &Path| -> xlm::Result<LoaderReport> {
            let exe = std::env::current_exe().expect("own executable");
            let mut cmd = std::process::Command::new(exe);
            cmd.args(["bench", "--loader-only", "--cache-dir"]).arg(dir);
            cmd.args([
                "--rows",
                &o.rows.to_string(),
                "--tokens",
                &o.tokens.to_string(),
                "--batch-size",
                &o.batch_size.to_string(),
            ]);
            cmd.args([
                "--shards",
                &o.shards.to_string(),
                "--shuffle-buffer",
                &o.shuffle_buffer.to_string(),
                "--block-size",
                &o.block_size.to_string(),
            ]);
            cmd.arg("--workers").arg(
                o.workers
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
            cmd.args(["--repeats", &o.repeats.to_string()]);
            if let Some(m) = o.min_tokens {
                cmd.args(["--min-tokens", &m.to_string()]);
            }
            let out = cmd
                .output()
                .map_err(|e| xlm::cache::CacheError::io(dir, e))?;
            let fail = |reason: String| {
                xlm::registry::ProcessError::failed("xlm bench (loader phase)", reason)
            };
            if !out.status.success() {
                return Err(fail(format!(
                    "{:?}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ))
                .into());
            }
            serde_json::from_slice(&out.stdout).map_err(|e| fail(e.to_string()).into())
        };
        let report = run(&o, self.cache_dir.clone(), child)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{report}");
        }
        Ok(())
    }
}
