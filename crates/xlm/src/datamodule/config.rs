//! The data module's configuration, with xlm-core's keys.

use super::DataModuleError;
use crate::manager::DatasetManagerConfig;
use crate::tokenizer::{GlobalComponents, TokenizerConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

fn default_block_size() -> Option<usize> {
    Some(128)
}

/// xlm-core's class name for the data module, as a Hydra `_target_`.
pub const TEXT_DATA_MODULE_TARGET: &str = "xlm.datamodule.TextDataModule";

/// A split of `dataset_managers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training (one manager at most).
    Train,
    /// Validation (a list of loaders).
    Val,
    /// Test (a list of loaders).
    Test,
    /// Prediction (a list of loaders).
    Predict,
}

impl Split {
    /// All splits, in Lightning's order.
    pub const ALL: [Split; 4] = [Split::Train, Split::Val, Split::Test, Split::Predict];

    /// The split's key in `dataset_managers`.
    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
            Split::Predict => "predict",
        }
    }

    fn parse(key: &str) -> Result<Self, DataModuleError> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == key)
            .ok_or_else(|| DataModuleError::Config {
                key: format!("dataset_managers.{key}"),
                reason: format!("`{key}` is not a split; use train, val, test or predict"),
            })
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `TextDataModule` config (xlm-core's `datamodule` node). Unknown keys
/// are errors that name the key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextDataModuleConfig {
    /// `xlm.datamodule.TextDataModule` (optional; any other target is an error).
    #[serde(rename = "_target_", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `split -> name -> manager config`, in the config's order.
    pub dataset_managers: serde_json::Map<String, serde_json::Value>,
    /// Base directory of every manager's cache.
    pub manual_cache_dir: PathBuf,
    /// The tokenizer every manager shares (may be
    /// `${global_components:tokenizer}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerConfig>,
    /// xlm-core's `global_components` block (what `${global_components:...}`
    /// refers to), when the config carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_components: Option<GlobalComponents>,
    /// Sequence length for packers and padding collators (default 128,
    /// as xlm-core's).
    #[serde(
        default = "default_block_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub block_size: Option<usize>,
    /// Samples per optimiser step over all ranks; sets the accumulation.
    /// Unset: no accumulation check (xlm-core defaults it to 512 but only
    /// its config resolver reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_batch_size: Option<u64>,
    /// Rewrite every manager's cache (OR-ed with each manager's own flag;
    /// xlm-core stores this key but never uses it).
    #[serde(default)]
    pub rewrite_manual_cache: bool,
    /// Threads for preprocessing in `prepare_data` (each manager's `num_proc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_dataset_workers: Option<usize>,
    /// Unconditional generation: examples to generate (passed to xlm-core's
    /// generation loop; the data layer keeps it for the trainer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_unconditional_samples: Option<usize>,
    /// The model's noise schedule (used by xlm-core's collators of
    /// diffusion models; kept for the trainer, unused by the data layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_schedule: Option<serde_json::Value>,
    /// A function that prints a batch (xlm-core debugging aid; kept, unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print_batch_fn: Option<String>,
    /// Logging verbosity (kept, unused: xlm logs through `log`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verbosity: Option<serde_json::Value>,
    /// `false` (xlm-core's choice): global rank 0 prepares for everyone (one
    /// shared filesystem); `true`: local rank 0 of every node prepares.
    #[serde(default)]
    pub prepare_data_per_node: bool,
}

impl TextDataModuleConfig {
    /// Parses a JSON config; Hydra leftovers (`${...}` other than the
    /// global tokenizer, `???`) are errors naming their key path.
    pub fn from_json(text: &str) -> Result<Self, DataModuleError> {
        let value = serde_json::from_str(text).map_err(|e| DataModuleError::Config {
            key: "(json)".into(),
            reason: e.to_string(),
        })?;
        Self::from_value(value)
    }

    /// Parses a YAML config (see [`from_json`](Self::from_json)).
    #[cfg(feature = "yaml")]
    pub fn from_yaml(text: &str) -> Result<Self, DataModuleError> {
        let value = serde_yaml_ng::from_str(text).map_err(|e| DataModuleError::Config {
            key: "(yaml)".into(),
            reason: e.to_string(),
        })?;
        Self::from_value(value)
    }

    /// Reads a config from a JSON value (see [`from_json`](Self::from_json)).
    pub fn from_value(value: serde_json::Value) -> Result<Self, DataModuleError> {
        crate::manager::check_unresolved(&value, "").map_err(|e| DataModuleError::Config {
            key: e.path.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_value(value).map_err(|e| DataModuleError::Config {
            key: "(config)".into(),
            reason: e.to_string(),
        })
    }

    /// The shared tokenizer's config with `${global_components:tokenizer}`
    /// resolved.
    pub fn resolved_tokenizer(&self) -> Result<Option<TokenizerConfig>, DataModuleError> {
        self.tokenizer
            .as_ref()
            .map(|t| t.resolve(self.global_components.as_ref()))
            .transpose()
            .map_err(|e| DataModuleError::Config {
                key: "tokenizer".into(),
                reason: e.to_string(),
            })
    }

    /// The managers' configs: `(split, name, config)` in the config's order,
    /// each checked; unknown splits, two train managers and bad manager
    /// configs are errors naming the key.
    pub fn managers(&self) -> Result<Vec<(Split, String, DatasetManagerConfig)>, DataModuleError> {
        if let Some(t) = &self.target {
            if t != TEXT_DATA_MODULE_TARGET {
                return Err(DataModuleError::Config {
                    key: "_target_".into(),
                    reason: format!(
                        "`{t}` is not a data module this xlm knows; use {TEXT_DATA_MODULE_TARGET}"
                    ),
                });
            }
        }
        let mut out = Vec::new();
        for (split_key, entries) in &self.dataset_managers {
            let split = Split::parse(split_key)?;
            let entries = match entries {
                serde_json::Value::Object(m) if split == Split::Train && m.is_empty() => {
                    return Err(DataModuleError::Config {
                        key: "dataset_managers.train".into(),
                        reason: "there should be exactly one train dataset manager (found none); remove the empty `train` entry for a module without training".into(),
                    })
                }
                serde_json::Value::Object(m) => m,
                serde_json::Value::Null if split == Split::Train => {
                    return Err(DataModuleError::Config {
                        key: "dataset_managers.train".into(),
                        reason: "there should be exactly one train dataset manager (found null)".into(),
                    })
                }
                serde_json::Value::Null => continue,
                other => {
                    return Err(DataModuleError::Config {
                        key: format!("dataset_managers.{split_key}"),
                        reason: format!(
                            "expected a mapping of name -> dataset manager, found {other}"
                        ),
                    })
                }
            };
            if split == Split::Train && entries.len() > 1 {
                return Err(DataModuleError::Config {
                    key: "dataset_managers.train".into(),
                    reason: format!(
                        "at most one train dataset manager (found {}: {})",
                        entries.len(),
                        entries.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            for (name, value) in entries {
                let mut config: DatasetManagerConfig = serde_json::from_value(value.clone())
                    .map_err(|e| DataModuleError::Config {
                        key: format!("dataset_managers.{split_key}.{name}"),
                        reason: e.to_string(),
                    })?;
                config.rewrite_manual_cache |= self.rewrite_manual_cache;
                out.push((split, name.clone(), config));
            }
        }
        Ok(out)
    }
}
