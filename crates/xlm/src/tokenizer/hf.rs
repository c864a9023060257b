use super::{Specials, Tokenizer, TokenizerError};
use std::path::Path;

/// Any Hugging Face `tokenizer.json`, through the `tokenizers` crate.
///
/// Special ids are looked up by the usual token spellings (`[PAD]`, `<pad>`,
/// `<|pad|>`, `</s>`, `<|endoftext|>`, ...).
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    specials: Specials,
}

impl std::fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("specials", &self.specials)
            .finish()
    }
}

impl HfTokenizer {
    /// Loads `path` (a `tokenizer.json`).
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| TokenizerError::Load {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let find = |names: &[&str]| names.iter().find_map(|n| inner.token_to_id(n));
        let specials = Specials {
            pad: find(&["[PAD]", "<pad>", "<|pad|>"]),
            cls: find(&["[CLS]", "<cls>", "<|cls|>"]),
            mask: find(&["[MASK]", "<mask>", "<|mask|>"]),
            eos: find(&["[EOS]", "</s>", "<eos>", "<|endoftext|>", "<|eos|>"]),
            bos: find(&["[BOS]", "<s>", "<bos>", "<|bos|>", "<|startoftext|>"]),
            sep: find(&["[SEP]", "<sep>", "<|sep|>"]),
            unk: find(&["[UNK]", "<unk>", "<|unk|>"]),
        };
        Ok(Self { inner, specials })
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        self.inner
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| TokenizerError::Encode {
                text: text.chars().take(80).collect(),
                reason: e.to_string(),
            })
    }

    fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn specials(&self) -> Specials {
        self.specials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WordLevel tokenizer.json written by hand, as `tokenizers` saves one.
    pub(crate) fn word_level_json() -> String {
        serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "unk_token": "[UNK]",
                      "vocab": {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, "[BOS]": 3, "hello": 4, "world": 5}}
        })
        .to_string()
    }

    #[test]
    fn loads_tokenizer_json_and_finds_specials() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("tokenizer.json");
        std::fs::write(&p, word_level_json()).unwrap();
        let t = HfTokenizer::from_file(&p).unwrap();
        assert_eq!(t.encode("hello world zzz").unwrap(), vec![4, 5, 1]);
        assert_eq!(t.specials().eos, Some(2));
        assert_eq!(t.specials().bos, Some(3));
        assert_eq!(t.vocab_size(), 6);
        let e = HfTokenizer::from_file(&d.path().join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json"), "{e}");
    }
}
