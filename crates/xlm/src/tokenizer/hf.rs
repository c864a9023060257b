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
    /// The id of `token` (a vocabulary or added token), if it has one.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Adds `token` as a special token unless the tokenizer has it; returns
    /// its id (a new token takes the next free id, as Hugging Face's
    /// `add_special_tokens` does).
    pub fn add_special_token(&mut self, token: &str) -> Result<u32, TokenizerError> {
        if let Some(id) = self.inner.token_to_id(token) {
            return Ok(id);
        }
        let load =
            |reason: String| TokenizerError::Config(format!("special token `{token}`: {reason}"));
        self.inner
            .add_special_tokens([tokenizers::AddedToken::from(token, true)])
            .map_err(|e| load(format!("cannot add the special token: {e}")))?;
        self.inner
            .token_to_id(token)
            .ok_or_else(|| load("the added special token has no id".into()))
    }

    /// Replaces the special ids.
    pub fn set_specials(&mut self, specials: Specials) {
        self.specials = specials;
    }

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

    /// What the tokenizer's post-processor (e.g. BERT's `[CLS] $A [SEP]`)
    /// makes of one sequence; no truncation or padding.
    fn build_inputs_with_special_tokens(&self, ids: &[u32]) -> Vec<u32> {
        self.post_processed(ids)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_else(|| ids.to_vec())
    }

    /// The type ids of [`build_inputs_with_special_tokens`](Self::build_inputs_with_special_tokens).
    fn create_token_type_ids_from_sequences(&self, ids: &[u32]) -> Vec<u32> {
        self.post_processed(ids)
            .map(|e| e.get_type_ids().to_vec())
            .unwrap_or_else(|| vec![0; ids.len()])
    }
}

impl HfTokenizer {
    fn post_processed(&self, ids: &[u32]) -> Option<tokenizers::Encoding> {
        use tokenizers::PostProcessor;
        let pp = self.inner.get_post_processor()?;
        let tokens = ids
            .iter()
            .map(|&id| {
                let value = self.inner.id_to_token(id).unwrap_or_default();
                tokenizers::Token::new(id, value, (0, 0))
            })
            .collect();
        pp.process(tokenizers::Encoding::from_tokens(tokens, 0), None, true)
            .ok()
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
