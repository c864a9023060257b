//! The `xlm` command line: argument types and the commands they run.

mod bench;
mod demo;
mod inspect;
mod launch;
mod prepare;
mod probe;

pub use bench::BenchArgs;
pub use demo::DemoArgs;
pub use inspect::InspectArgs;
pub use launch::LaunchArgs;
pub use prepare::{PrepareCliArgs, PrepareConfig};
pub use probe::ProbeArgs;

use clap::{Parser, Subcommand};
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads a config file: YAML when it ends in `.yaml`/`.yml`, JSON otherwise.
/// Errors name the file.
pub fn read_config_file<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let parsed = if yaml {
        serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
    } else {
        serde_json::from_str(&text).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| format!("{}: {e}", path.display()))
}

/// xlm: the data layer for language-model training.
#[derive(Debug, Parser)]
#[command(name = "xlm", version, about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare a built-in dataset into a cache, set it up, iterate an epoch and print throughput.
    Demo(DemoArgs),
    /// Run N ranks of a command on this machine (the torchrun analogue).
    Launch(LaunchArgs),
    /// Download, preprocess and cache a dataset described by a JSON or YAML config file.
    Prepare(PrepareCliArgs),
    /// Show a cache's rows, schema, token statistics and a few examples.
    Inspect(InspectArgs),
    /// Measure prepare and loader throughput against a memcpy baseline.
    Bench(BenchArgs),
    /// Run one rank of a pipeline config and write `rank_<RANK>.json` (check a config before training).
    Probe(ProbeArgs),
}

impl Command {
    /// Argument combinations clap does not check. `Err((subcommand,
    /// message))` is a usage error, which the binary reports like clap's own
    /// (exit code 2).
    pub fn check_usage(&self) -> Result<(), (&'static str, String)> {
        match self {
            Command::Bench(b) if b.loader_only && b.cache_dir.is_none() => {
                Err(("bench", "--loader-only needs --cache-dir".into()))
            }
            _ => Ok(()),
        }
    }
}
