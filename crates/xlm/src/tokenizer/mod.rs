//! Tokenizers: text to token ids.
//!
//! Two implementations of one [`Tokenizer`] trait: the
//! [`SimpleSpaceTokenizer`] of the test tiers and [`HfTokenizer`], which
//! loads any Hugging Face `tokenizer.json` (pure-Rust regex backend, no
//! network). Functions that need special ids (packing needs EOS, padding
//! needs PAD) read them from [`Specials`].

#[cfg(feature = "tokenizer-json")]
mod hf;
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
}

/// A tokenizer chosen by configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenizerConfig {
    /// [`SimpleSpaceTokenizer`] over `vocab` (default: the 50-word test
    /// vocabulary `w0`..`w49`, ids 7..=56).
    SimpleSpace {
        /// The words, ids from 7 in order.
        #[serde(default)]
        vocab: Option<Vec<String>>,
    },
    /// A Hugging Face `tokenizer.json`.
    TokenizerJson {
        /// Path of the file.
        path: PathBuf,
    },
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig::SimpleSpace { vocab: None }
    }
}

impl TokenizerConfig {
    /// Builds the tokenizer.
    pub fn build(&self) -> Result<Arc<dyn Tokenizer>, TokenizerError> {
        Ok(match self {
            TokenizerConfig::SimpleSpace { vocab: Some(v) } => {
                Arc::new(SimpleSpaceTokenizer::new(v.clone())?)
            }
            TokenizerConfig::SimpleSpace { vocab: None } => {
                Arc::new(SimpleSpaceTokenizer::test_vocab())
            }
            #[cfg(feature = "tokenizer-json")]
            TokenizerConfig::TokenizerJson { path } => Arc::new(HfTokenizer::from_file(path)?),
            #[cfg(not(feature = "tokenizer-json"))]
            TokenizerConfig::TokenizerJson { path } => {
                return Err(TokenizerError::Load {
                    path: path.clone(),
                    reason: "this xlm was built without the `tokenizer-json` feature; enable it to load tokenizer.json files".into(),
                })
            }
        })
    }
}
