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
use xlm::tokenizer::GlobalComponents;

/// Reads a config file: YAML when it ends in `.yaml`/`.yml`, JSON otherwise.
///
/// Hydra leftovers anywhere in the file (`${...}` other than
/// `${global_components:tokenizer}`, `???`, `defaults`) are errors naming
/// their key path ([`xlm::manager::check_unresolved`]). A top-level
/// `global_components: {tokenizer: ...}` block (xlm-core's) is taken out of
/// the file: its tokenizer replaces a top-level `tokenizer:
/// ${global_components:tokenizer}`, or becomes `tokenizer` when the file has
/// none. Errors name the file.
pub fn read_config_file<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let at = |e: String| format!("{}: {e}", path.display());
    let text = std::fs::read_to_string(path).map_err(|e| at(e.to_string()))?;
    let yaml = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    let mut value: serde_json::Value = if yaml {
        serde_yaml_ng::from_str(&text).map_err(|e| at(e.to_string()))?
    } else {
        serde_json::from_str(&text).map_err(|e| at(e.to_string()))?
    };
    xlm::manager::check_unresolved(&value, "").map_err(|e| at(e.to_string()))?;
    if !resolve_global_components(&mut value).map_err(at)? {
        // No rewrite: parse the text itself, so errors keep their line.
        let parsed = if yaml {
            serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        return parsed.map_err(at);
    }
    serde_json::from_value(value).map_err(|e| at(e.to_string()))
}

/// Takes a top-level `global_components` out of `value` and puts its
/// tokenizer where `${global_components:tokenizer}` refers to it (the
/// top-level `tokenizer`; nested references, e.g. a collator's, mean the
/// tokenizer given to setup and stay). Returns whether `value` changed.
fn resolve_global_components(value: &mut serde_json::Value) -> Result<bool, String> {
    let Some(top) = value.as_object_mut() else {
        return Ok(false);
    };
    // A data module resolves its own `${global_components:...}`: leave the
    // block with it (moved into a nested `datamodule` node).
    if top.contains_key("dataset_managers") {
        return Ok(false);
    }
    if top.contains_key("datamodule") {
        let Some(gc) = top.remove("global_components") else {
            return Ok(false);
        };
        if let Some(dm) = top.get_mut("datamodule").and_then(|d| d.as_object_mut()) {
            dm.entry("global_components").or_insert(gc);
        }
        return Ok(true);
    }
    let Some(gc) = top.remove("global_components") else {
        return Ok(false);
    };
    let gc: GlobalComponents =
        serde_json::from_value(gc).map_err(|e| format!("global_components: {e}"))?;
    if let Some(tok) = &gc.tokenizer {
        let tok = serde_json::to_value(tok).map_err(|e| e.to_string())?;
        match top.get_mut("tokenizer") {
            None => {
                top.insert("tokenizer".into(), tok);
            }
            Some(t) if t.as_str() == Some(xlm::manager::GLOBAL_TOKENIZER) => *t = tok,
            Some(_) => {}
        }
    }
    Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn read_config_file_resolves_the_global_tokenizer_and_names_leftovers() {
        let d = tempfile::tempdir().unwrap();
        let yaml = r#"
global_components:
  tokenizer:
    _target_: xlm.datamodule.SimpleSpaceTokenizer.for_numbers
    vocab_size: 4
  noise_schedule: {_target_: xlm.noise.LogLinear}
tokenizer: ${global_components:tokenizer}
manual_cache_dir: /tmp/cache
dsm_kwargs:
  full_name: mem/raw/train
  collator:
    _target_: xlm.datamodule.DefaultCollator
    tokenizer: ${global_components:tokenizer}
    noise_schedule: ${global_components:noise_schedule}
"#;
        let cfg: PrepareConfig = read_config_file(&write(d.path(), "a.yaml", yaml)).unwrap();
        assert_eq!(
            cfg.tokenizer,
            xlm::tokenizer::TokenizerConfig::SimpleSpace {
                vocab: Some(vec!["0".into(), "1".into(), "2".into(), "3".into()])
            }
        );
        // Without a top-level tokenizer, the global one becomes it.
        let no_tok = yaml.replace(
            "tokenizer: ${global_components:tokenizer}\nmanual",
            "manual",
        );
        let cfg: PrepareConfig = read_config_file(&write(d.path(), "b.yaml", &no_tok)).unwrap();
        assert!(
            matches!(cfg.tokenizer, xlm::tokenizer::TokenizerConfig::SimpleSpace { vocab: Some(ref v) } if v.len() == 4)
        );
        let bad = yaml.replace(
            "full_name: mem/raw/train",
            "full_name: ${oc.env:DATA}/raw/train",
        );
        let e = read_config_file::<PrepareConfig>(&write(d.path(), "c.yaml", &bad)).unwrap_err();
        assert!(
            e.contains("c.yaml")
                && e.contains("dsm_kwargs.full_name")
                && e.contains("must be resolved"),
            "{e}"
        );
        let e = read_config_file::<serde_json::Value>(&write(
            d.path(),
            "d.json",
            r#"{"a": {"b": ["???"]}}"#,
        ))
        .unwrap_err();
        assert!(e.contains("a.b[0]"), "{e}");
    }
}
