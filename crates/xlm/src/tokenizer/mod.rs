//! Tokenizers: text to token ids.
//!
//! Two implementations of one [`Tokenizer`] trait: the
//! [`SimpleSpaceTokenizer`] of the test tiers and [`HfTokenizer`], which
//! loads any Hugging Face `tokenizer.json` (pure-Rust regex backend, no
//! network). Functions that need special ids (packing needs EOS, padding
//! needs PAD) read them from [`Specials`].
//!
//! [`TokenizerConfig`] reads xlm's own form (`kind: ...`) and xlm-core's
//! Hydra forms: `_target_: xlm.datamodule.SimpleSpaceTokenizer` (`vocab`),
//! its `.for_numbers` (`vocab_size`), any `<Class>.from_pretrained`
//! (`pretrained_model_name_or_path`: a directory with `tokenizer.json`, or a
//! Hub model in the Hub cache), and the reference
//! `${global_components:tokenizer}` to a file's [`GlobalComponents`].

#[cfg(feature = "tokenizer-json")]
mod hf;
#[cfg(feature = "tokenizer-json")]
pub mod pretrained;
mod simple;

#[cfg(feature = "tokenizer-json")]
pub use hf::HfTokenizer;
pub use simple::SimpleSpaceTokenizer;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use thiserror::Error;

/// Tokenizer failures.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// A word is not in the vocabulary.
    #[error("word `{word}` is not in the vocabulary of SimpleSpaceTokenizer (text: {text:?})")]
    UnknownWord {
        /// The word.
        word: String,
        /// The text being encoded.
        text: String,
    },
    /// The tokenizer file could not be loaded.
    #[error("cannot load tokenizer from {path}: {reason}")]
    Load {
        /// The file.
        path: PathBuf,
        /// Why it could not be loaded.
        reason: String,
    },
    /// Encoding failed.
    #[error("tokenizer failed on {text:?}: {reason}")]
    Encode {
        /// The text.
        text: String,
        /// Why it failed.
        reason: String,
    },
    /// A vocabulary lists a word twice.
    #[error("the vocabulary repeats the word `{0}`")]
    DuplicateWord(String),
    /// A tokenizer config cannot be built.
    #[error("tokenizer: {0}")]
    Config(String),
}

/// Ids of the special tokens a tokenizer has (None where it has none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specials {
    /// Padding.
    pub pad: Option<u32>,
    /// Classification / start-of-input.
    pub cls: Option<u32>,
    /// Mask.
    pub mask: Option<u32>,
    /// End of sequence.
    pub eos: Option<u32>,
    /// Beginning of sequence.
    pub bos: Option<u32>,
    /// Separator.
    pub sep: Option<u32>,
    /// Unknown word.
    pub unk: Option<u32>,
}

/// Turns text into token ids and back.
pub trait Tokenizer: Send + Sync {
    /// Token ids of `text` (no special tokens added).
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError>;
    /// Text of `ids` (special tokens kept).
    fn decode(&self, ids: &[u32]) -> String;
    /// Number of ids, specials included.
    fn vocab_size(&self) -> usize;
    /// The special ids.
    fn specials(&self) -> Specials;
    /// `ids` with the tokenizer's special tokens, as Hugging Face's
    /// `build_inputs_with_special_tokens(ids)` (default: `ids` unchanged,
    /// as for xlm-core's `SimpleSpaceTokenizer`).
    fn build_inputs_with_special_tokens(&self, ids: &[u32]) -> Vec<u32> {
        ids.to_vec()
    }
    /// The type ids that go with them, as Hugging Face's
    /// `create_token_type_ids_from_sequences(ids)` (default: a 0 per id).
    fn create_token_type_ids_from_sequences(&self, ids: &[u32]) -> Vec<u32> {
        vec![0; ids.len()]
    }
}

/// A tokenizer chosen by configuration.
///
/// Accepted forms (YAML shown):
///
/// ```yaml
/// tokenizer: {kind: simple_space, vocab: [a, b]}        # xlm's forms
/// tokenizer: {kind: tokenizer_json, path: tok/tokenizer.json}
/// tokenizer: {_target_: xlm.datamodule.SimpleSpaceTokenizer, vocab: [a, b]}
/// tokenizer: {_target_: xlm.datamodule.SimpleSpaceTokenizer.for_numbers, vocab_size: 20}
/// tokenizer: {_target_: xlm.datamodule.BertTokenizerFast.from_pretrained,
///             pretrained_model_name_or_path: bert-base-uncased}
/// tokenizer: ${global_components:tokenizer}             # see GlobalComponents
/// ```
///
/// Unknown keys, other targets and Hydra leftovers are errors naming them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerConfig {
    /// [`SimpleSpaceTokenizer`] over `vocab` (default: the 50-word test
    /// vocabulary `w0`..`w49`, ids 7..=56). xlm-core's
    /// `SimpleSpaceTokenizer(vocab)` and `.for_numbers(vocab_size)` (vocab
    /// `"0"`..) are this, with the same ids.
    SimpleSpace {
        /// The words, ids from 7 in order.
        vocab: Option<Vec<String>>,
    },
    /// A Hugging Face `tokenizer.json`.
    TokenizerJson {
        /// Path of the file.
        path: PathBuf,
    },
    /// xlm-core's `_target_: <Class>.from_pretrained` (see [`pretrained`]).
    Pretrained {
        /// The `_target_`.
        target: String,
        /// `pretrained_model_name_or_path`: a directory with
        /// `tokenizer.json`, or a Hub model name found in the Hub cache.
        name_or_path: String,
    },
    /// `${global_components:tokenizer}`: the `tokenizer` of the config's
    /// top-level `global_components` (see [`TokenizerConfig::resolve`]).
    GlobalComponent,
}

/// xlm's own form, `kind: ...`.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum Tagged {
    SimpleSpace {
        #[serde(default)]
        vocab: Option<Vec<String>>,
    },
    TokenizerJson {
        path: PathBuf,
    },
}

const SIMPLE_SPACE: &str = "xlm.datamodule.SimpleSpaceTokenizer";

impl TokenizerConfig {
    /// Reads a tokenizer config (any accepted form) from a JSON value.
    pub fn from_value(v: serde_json::Value) -> Result<Self, TokenizerError> {
        use crate::manager::{check_unresolved, GLOBAL_TOKENIZER};
        check_unresolved(&v, "").map_err(|e| TokenizerError::Config(e.to_string()))?;
        let bad = |reason: String| Err(TokenizerError::Config(reason));
        let mut m = match v {
            serde_json::Value::String(s) if s == GLOBAL_TOKENIZER => {
                return Ok(TokenizerConfig::GlobalComponent)
            }
            serde_json::Value::Object(m) => m,
            other => {
                return bad(format!(
                    "expected a tokenizer mapping (`_target_: ...` or `kind: ...`) or `{GLOBAL_TOKENIZER}`, not {other}"
                ))
            }
        };
        if m.contains_key("kind") {
            let t: Tagged = serde_json::from_value(serde_json::Value::Object(m))
                .map_err(|e| TokenizerError::Config(e.to_string()))?;
            return Ok(match t {
                Tagged::SimpleSpace { vocab } => TokenizerConfig::SimpleSpace { vocab },
                Tagged::TokenizerJson { path } => TokenizerConfig::TokenizerJson { path },
            });
        }
        let target = match m.remove("_target_") {
            Some(serde_json::Value::String(t)) => t,
            Some(other) => return bad(format!("`_target_` must be a class name, not {other}")),
            None => return bad(
                "a tokenizer mapping needs `_target_` (xlm-core's class) or `kind` (xlm's form)"
                    .into(),
            ),
        };
        let mut take = |key: &str| m.remove(key);
        let config = if target.contains("WithCyclicPads") {
            return bad(format!(
                "`{target}` adds cyclic pad tokens, which xlm does not reproduce; use the class without cyclic pads"
            ));
        } else if target == SIMPLE_SPACE {
            let vocab: Vec<String> = match take("vocab") {
                Some(v) => serde_json::from_value(v).map_err(|e| {
                    TokenizerError::Config(format!("{target}: vocab must be a list of words: {e}"))
                })?,
                None => return bad(format!("{target} needs `vocab`, the list of words")),
            };
            TokenizerConfig::SimpleSpace { vocab: Some(vocab) }
        } else if target == format!("{SIMPLE_SPACE}.for_numbers") {
            let n = match take("vocab_size").as_ref().and_then(|v| v.as_u64()) {
                Some(n) if n <= 1 << 24 => n,
                Some(n) => {
                    return bad(format!(
                        "{target}: vocab_size {n} is too large (at most 16777216 words)"
                    ))
                }
                None => return bad(format!("{target} needs `vocab_size`, a whole number")),
            };
            TokenizerConfig::SimpleSpace {
                vocab: Some((0..n).map(|i| i.to_string()).collect()),
            }
        } else if target == format!("{SIMPLE_SPACE}.from_pretrained") {
            return bad(format!(
                "`{target}` is not implemented in xlm-core either; use {SIMPLE_SPACE} with `vocab`"
            ));
        } else if target.ends_with(".from_pretrained") {
            let name_or_path = match take("pretrained_model_name_or_path") {
                Some(serde_json::Value::String(p)) => p,
                _ => {
                    return bad(format!(
                        "{target} needs `pretrained_model_name_or_path`: a directory with tokenizer.json, or a Hub model name"
                    ))
                }
            };
            TokenizerConfig::Pretrained {
                target: target.clone(),
                name_or_path,
            }
        } else {
            return bad(format!(
                "`_target_: {target}` is not a tokenizer xlm can build; use {SIMPLE_SPACE} (vocab), {SIMPLE_SPACE}.for_numbers (vocab_size), or a `<Class>.from_pretrained` (pretrained_model_name_or_path)"
            ));
        };
        if let Some(k) = m.keys().next() {
            return bad(format!(
                "{target}: unknown key `{k}` (xlm reads {})",
                match &config {
                    TokenizerConfig::Pretrained { .. } => "pretrained_model_name_or_path",
                    _ if target == SIMPLE_SPACE => "vocab",
                    _ => "vocab_size",
                }
            ));
        }
        Ok(config)
    }

    /// This config with `${global_components:tokenizer}` replaced by
    /// `global`'s tokenizer (an error when there is none).
    pub fn resolve(&self, global: Option<&GlobalComponents>) -> Result<Self, TokenizerError> {
        if let Some(g) = global {
            g.check()?;
        }
        match self {
            TokenizerConfig::GlobalComponent => match global.and_then(|g| g.tokenizer.as_ref()) {
                Some(TokenizerConfig::GlobalComponent) | None => Err(TokenizerError::Config(format!(
                    "`{}` needs a top-level `global_components: {{tokenizer: ...}}` in the same config",
                    crate::manager::GLOBAL_TOKENIZER
                ))),
                Some(t) => Ok(t.clone()),
            },
            other => Ok(other.clone()),
        }
    }
}

impl Serialize for TokenizerConfig {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TokenizerConfig::SimpleSpace { vocab } => Tagged::SimpleSpace {
                vocab: vocab.clone(),
            }
            .serialize(s),
            TokenizerConfig::TokenizerJson { path } => {
                Tagged::TokenizerJson { path: path.clone() }.serialize(s)
            }
            TokenizerConfig::Pretrained {
                target,
                name_or_path,
            } => serde_json::json!({
                "_target_": target,
                "pretrained_model_name_or_path": name_or_path,
            })
            .serialize(s),
            TokenizerConfig::GlobalComponent => s.serialize_str(crate::manager::GLOBAL_TOKENIZER),
        }
    }
}

impl<'de> Deserialize<'de> for TokenizerConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Self::from_value(v).map_err(serde::de::Error::custom)
    }
}

/// xlm-core's top-level `global_components` block: what
/// `${global_components:<name>}` refers to.
///
/// xlm-core writes it as `{_target_: builtins.dict, tokenizer: ..., ...}`;
/// the `_target_` is accepted, and entries other than `tokenizer` (the
/// noise schedule, metric parsers, ...) are kept but unused by the data
/// layer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GlobalComponents {
    /// `builtins.dict` (Hydra's way of writing a plain mapping).
    #[serde(rename = "_target_", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The shared tokenizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerConfig>,
    /// The model's noise schedule: accepted and ignored (the data layer's
    /// collators add no noise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_schedule: Option<serde_json::Value>,
    /// Other components (metric parsers, ...): kept, unused here.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl GlobalComponents {
    /// Checks the block's `_target_` (only `builtins.dict` or none).
    pub fn check(&self) -> Result<(), TokenizerError> {
        match self.target.as_deref() {
            None | Some("builtins.dict") | Some("dict") => Ok(()),
            Some(t) => Err(TokenizerError::Config(format!(
                "global_components._target_ `{t}`: expected builtins.dict (a plain mapping)"
            ))),
        }
    }
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig::SimpleSpace { vocab: None }
    }
}

impl TokenizerConfig {
    /// Builds the tokenizer (`${global_components:tokenizer}` must be
    /// [resolved](Self::resolve) first).
    pub fn build(&self) -> Result<Arc<dyn Tokenizer>, TokenizerError> {
        Ok(match self {
            TokenizerConfig::SimpleSpace { vocab: Some(v) } => {
                Arc::new(SimpleSpaceTokenizer::new(v.clone())?)
            }
            TokenizerConfig::SimpleSpace { vocab: None } => {
                Arc::new(SimpleSpaceTokenizer::test_vocab())
            }
            TokenizerConfig::GlobalComponent => {
                return Err(TokenizerError::Config(format!(
                    "`{}` was not resolved: give the config a top-level `global_components: {{tokenizer: ...}}`",
                    crate::manager::GLOBAL_TOKENIZER
                )))
            }
            #[cfg(feature = "tokenizer-json")]
            TokenizerConfig::TokenizerJson { path } => Arc::new(HfTokenizer::from_file(path)?),
            #[cfg(feature = "tokenizer-json")]
            TokenizerConfig::Pretrained {
                target,
                name_or_path,
            } => Arc::new(pretrained::load(target, name_or_path)?),
            #[cfg(not(feature = "tokenizer-json"))]
            TokenizerConfig::TokenizerJson { path } => {
                return Err(TokenizerError::Load {
                    path: path.clone(),
                    reason: "this xlm was built without the `tokenizer-json` feature; enable it to load tokenizer.json files".into(),
                })
            }
            #[cfg(not(feature = "tokenizer-json"))]
            TokenizerConfig::Pretrained { name_or_path, .. } => {
                return Err(TokenizerError::Load {
                    path: name_or_path.into(),
                    reason: "this xlm was built without the `tokenizer-json` feature; enable it to load pretrained tokenizers".into(),
                })
            }
        })
    }
}
