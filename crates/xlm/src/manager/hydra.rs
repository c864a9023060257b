//! What xlm does with the parts of xlm-core's Hydra configs that only Hydra
//! understands.
//!
//! xlm reads *composed* configs (what `python -m xlm ... --cfg job` prints),
//! not Hydra's config groups, and evaluates no interpolation. One function,
//! [`check_unresolved`], runs on every config xlm reads (a
//! [`DatasetManagerConfig`](super::DatasetManagerConfig) however it is
//! deserialised, a tokenizer config, and the whole file the CLI's
//! `read_config_file` reads) and rejects, naming the key path:
//!
//! - a `${...}` interpolation, other than [`GLOBAL_TOKENIZER`] (xlm-core
//!   keeps that reference unresolved in printed configs; it means "the
//!   tokenizer": the one passed to prepare/setup, or the file's
//!   `global_components.tokenizer`) and [`GLOBAL_NOISE_SCHEDULE`] as the
//!   value of a `noise_schedule` key (which xlm ignores);
//! - a `???` (Hydra's mandatory value that was never set);
//! - a `defaults` list (Hydra composition that was not done).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;

/// `${global_components:tokenizer}`: xlm-core's reference to the shared
/// tokenizer, kept as is in printed configs.
pub const GLOBAL_TOKENIZER: &str = "${global_components:tokenizer}";

/// `${global_components:noise_schedule}`: accepted only as the value of a
/// `noise_schedule` key (a collator argument or the data module's), which
/// xlm ignores.
pub const GLOBAL_NOISE_SCHEDULE: &str = "${global_components:noise_schedule}";

/// A value Hydra would have filled in, found where xlm reads a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// Key path, e.g. `datasets.train.lm1b.full_name` or `columns_to_remove[0]`.
    pub path: String,
    /// The value as written.
    pub value: String,
    /// What kind of leftover it is.
    pub kind: UnresolvedKind,
}

/// Kinds of [`Unresolved`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnresolvedKind {
    /// A `${...}` interpolation.
    Interpolation,
    /// `???`: a mandatory value never set.
    Missing,
    /// A `defaults` composition list.
    Defaults,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        match self.kind {
            UnresolvedKind::Interpolation => write!(
                f,
                "{path}: `{}` is a Hydra interpolation and must be resolved before xlm reads the config; xlm evaluates no `${{...}}` (only `{GLOBAL_TOKENIZER}` is understood, as the tokenizer); write the value, or print the resolved config with xlm-core (`--cfg job --resolve`)",
                self.value
            ),
            UnresolvedKind::Missing => write!(
                f,
                "{path}: `???` is a mandatory value that was never set and must be resolved: write the value"
            ),
            UnresolvedKind::Defaults => write!(
                f,
                "{path}: a Hydra `defaults` list must be resolved: xlm reads composed configs; compose it with xlm-core (`--cfg job`) and give xlm the printed config"
            ),
        }
    }
}

impl std::error::Error for Unresolved {}

/// True when `s` holds a `${` not escaped as `\${` (OmegaConf's escape).
fn has_interpolation(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(1))
        .any(|i| b[i] == b'$' && b[i + 1] == b'{' && (i == 0 || b[i - 1] != b'\\'))
}

/// Checks `value` (a whole config, or the node at `prefix`) for Hydra
/// leftovers: the first `${...}` other than the global tokenizer reference,
/// `???` or `defaults` list is an error naming its key path (`prefix`, then
/// dotted keys and `[i]` list indices).
pub fn check_unresolved(value: &serde_json::Value, prefix: &str) -> Result<(), Unresolved> {
    fn join(prefix: &str, key: &str) -> String {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    }
    fn walk(v: &serde_json::Value, path: &str, key: &str) -> Result<(), Unresolved> {
        let bad = |kind| Unresolved {
            path: path.to_string(),
            value: match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
            kind,
        };
        match v {
            serde_json::Value::String(s) => {
                if s.trim() == "???" {
                    return Err(bad(UnresolvedKind::Missing));
                }
                let allowed = s == GLOBAL_TOKENIZER
                    || (key == "noise_schedule" && s == GLOBAL_NOISE_SCHEDULE);
                if !allowed && has_interpolation(s) {
                    return Err(bad(UnresolvedKind::Interpolation));
                }
                Ok(())
            }
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(i, x)| walk(x, &format!("{path}[{i}]"), key)),
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let p = join(path, k);
                    if k == "defaults" && x.is_array() {
                        return Err(Unresolved {
                            path: p,
                            value: x.to_string(),
                            kind: UnresolvedKind::Defaults,
                        });
                    }
                    walk(x, &p, k)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    walk(value, prefix, prefix.rsplit('.').next().unwrap_or(""))
}

/// Logs, once per process and key, that a config key xlm accepts for
/// compatibility is set but has no effect in xlm, and why.
pub(crate) fn log_ignored_once(key: &'static str, why: &str) {
    static LOGGED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let first = LOGGED.lock().map(|mut s| s.insert(key)).unwrap_or(false);
    if first {
        log::info!("config key `{key}` is set but ignored by xlm: {why}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_leftovers_with_their_key_path() {
        let v = json!({"datasets": {"train": {"lm1b": {"full_name": "${oc.env:D}/x/train"}}}});
        let e = check_unresolved(&v, "").unwrap_err();
        assert_eq!(e.path, "datasets.train.lm1b.full_name");
        assert_eq!(e.kind, UnresolvedKind::Interpolation);
        let e = check_unresolved(&json!({"a": [1, "???"]}), "cfg").unwrap_err();
        assert_eq!(e.path, "cfg.a[1]");
        assert!(e.to_string().contains("must be resolved"), "{e}");
        let e = check_unresolved(&json!({"defaults": ["default_text"]}), "").unwrap_err();
        assert_eq!(e.kind, UnresolvedKind::Defaults);
    }

    #[test]
    fn allows_the_global_references_and_escapes() {
        let v = json!({"collator": {"tokenizer": GLOBAL_TOKENIZER,
                                    "noise_schedule": GLOBAL_NOISE_SCHEDULE},
                       "text": "costs \\${5}", "n": 3, "x": null});
        check_unresolved(&v, "").unwrap();
        let e = check_unresolved(&json!({"block_size": GLOBAL_NOISE_SCHEDULE}), "").unwrap_err();
        assert_eq!(e.path, "block_size");
    }
}
