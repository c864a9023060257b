use super::{Specials, Tokenizer, TokenizerError};
use crate::hash::Fnv;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

type WordIds = HashMap<String, u32, BuildHasherDefault<Fnv>>;

/// Special tokens and their fixed ids.
pub const SPECIAL_TOKENS: [&str; 7] = [
    "[PAD]", "[CLS]", "[MASK]", "[EOS]", "[BOS]", "[SEP]", "[UNK]",
];

/// Splits on single spaces; ids 0..=6 are the specials `[PAD]` `[CLS]`
/// `[MASK]` `[EOS]` `[BOS]` `[SEP]` `[UNK]`, the vocabulary follows from 7
/// in list order. Empty pieces are skipped; a word outside the vocabulary is
/// an error (the tokenizer is for tests and toy data, where that is a bug).
#[derive(Debug, Clone)]
pub struct SimpleSpaceTokenizer {
    words: Vec<String>,
    ids: WordIds,
}

impl SimpleSpaceTokenizer {
    /// A tokenizer over `vocab` (ids from 7).
    pub fn new(vocab: Vec<String>) -> Result<Self, TokenizerError> {
        let mut words: Vec<String> = SPECIAL_TOKENS.iter().map(|s| s.to_string()).collect();
        words.extend(vocab);
        let mut ids = WordIds::default();
        for (i, w) in words.iter().enumerate() {
            if ids.insert(w.clone(), i as u32).is_some() {
                return Err(TokenizerError::DuplicateWord(w.clone()));
            }
        }
        Ok(Self { words, ids })
    }

    /// The 50-word vocabulary `w0`..`w49` (ids 7..=56) that matches the
    /// token ids of the built-in datasets.
    pub fn test_vocab() -> Self {
        Self::new((0..50).map(|i| format!("w{i}")).collect()).expect("distinct words")
    }
}

impl Tokenizer for SimpleSpaceTokenizer {
    fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        text.split(' ')
            .filter(|p| !p.is_empty())
            .map(|w| {
                self.ids
                    .get(w)
                    .copied()
                    .ok_or_else(|| TokenizerError::UnknownWord {
                        word: w.to_string(),
                        text: text.to_string(),
                    })
            })
            .collect()
    }

    fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&i| {
                self.words
                    .get(i as usize)
                    .map(String::as_str)
                    .unwrap_or("[UNK]")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn vocab_size(&self) -> usize {
        self.words.len()
    }

    fn specials(&self) -> Specials {
        Specials {
            pad: Some(0),
            cls: Some(1),
            mask: Some(2),
            eos: Some(3),
            bos: Some(4),
            sep: Some(5),
            unk: Some(6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_specification() {
        let t = SimpleSpaceTokenizer::test_vocab();
        assert_eq!(t.vocab_size(), 57);
        assert_eq!(t.encode("w0  w49 ").unwrap(), vec![7, 56]);
        assert_eq!(t.encode("[BOS] w1 [EOS]").unwrap(), vec![4, 8, 3]);
        assert_eq!(t.decode(&[4, 8, 3]), "[BOS] w1 [EOS]");
        let e = t.encode("w1 nope").unwrap_err().to_string();
        assert!(e.contains("`nope`"), "{e}");
        assert_eq!(t.specials().eos, Some(3));
        assert!(SimpleSpaceTokenizer::new(vec!["a".into(), "a".into()]).is_err());
    }
}
