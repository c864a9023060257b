use crate::probe::{run_probe, write_result};
use std::path::PathBuf;

/// Arguments of `xlm probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Directory for `rank_<RANK>.json` (and the cache, unless setup_kwargs.manual_cache_dir is set).
    #[arg(long)]
    pub result_dir: PathBuf,
    /// The probe config: {"dsm_kwargs": {...}, "setup_kwargs": {...}, "run": {...}, "tokenizer": {...}}.
    #[arg(
        long,
        conflicts_with = "config_file",
        required_unless_present = "config_file"
    )]
    pub config_json: Option<String>,
    /// Read the probe config from this JSON or YAML (.yaml/.yml) file instead.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
}

impl ProbeArgs {
    /// Runs one rank and writes its result; returns the exit code (0 ok, 1 not ok).
    pub fn run(&self) -> i32 {
        let config = match (&self.config_json, &self.config_file) {
            (Some(j), _) => Ok(j.clone()),
            (None, Some(f)) => super::read_config_file::<serde_json::Value>(f)
                .map(|v| v.to_string())
                .map_err(|e| format!("--config-file {e}")),
            (None, None) => Err("no config: give --config-json or --config-file".into()),
        };
        let r = run_probe(&self.result_dir, config);
        let path = match write_result(&self.result_dir, &r) {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "xlm probe: rank {}: cannot write its result to {}: {e}",
                    r.rank,
                    self.result_dir.display()
                );
                return 1;
            }
        };
        if r.ok {
            println!(
                "xlm probe: rank {} of {}: ok, batches per epoch {:?}, result {}",
                r.rank,
                r.world_size,
                r.batch_counts(),
                path.display()
            );
            0
        } else {
            eprintln!(
                "xlm probe: rank {} of {}: FAILED: {} (result {})",
                r.rank,
                r.world_size,
                r.error.as_deref().unwrap_or("unknown error"),
                path.display()
            );
            1
        }
    }
}
