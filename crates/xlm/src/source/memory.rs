use super::{FullName, Source, SourceError};
use crate::data::{Example, Table, Value};
use crate::plan::Rng;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Tables held in memory, keyed by full name.
///
/// [`MemoryRegistry::builtin`] holds the datasets the test tiers use (sizes,
/// ids and token lengths fixed by the specification); tests and users can
/// build their own registry or replace entries at run time.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    tables: RwLock<BTreeMap<String, Table>>,
}

/// Seed of the built-in datasets' token content.
const BUILTIN_SEED: u64 = 0x005e_ed0f_d47a;

/// Deterministic token ids in 7..=56 for row `id`.
fn row_tokens(id: i64, len: usize) -> Vec<i64> {
    let mut rng = Rng::new(&[BUILTIN_SEED, id as u64]);
    (0..len).map(|_| 7 + rng.below(50) as i64).collect()
}

/// A table of rows `id`, `token_ids`, `text` = `row_<id>` with the given ids
/// and token lengths; token ids are deterministic in 7..=56.
pub fn synthetic_table(ids_and_lengths: impl IntoIterator<Item = (i64, usize)>) -> Table {
    Table::from_examples(ids_and_lengths.into_iter().map(|(id, len)| {
        Example::new()
            .with("id", Value::Int(id))
            .with("token_ids", Value::List(row_tokens(id, len)))
            .with("text", Value::Text(format!("row_{id}")))
    }))
    .expect("synthetic rows share one schema")
}

/// A table of rows `id`, `text`: for each (id, words), `words` words of the
/// test vocabulary (`w0`..`w49`), deterministic in (`seed`, id).
pub fn synthetic_text_table(
    seed: u64,
    ids_and_words: impl IntoIterator<Item = (i64, usize)>,
) -> Table {
    Table::from_examples(ids_and_words.into_iter().map(|(id, words)| {
        let mut rng = Rng::new(&[seed, id as u64]);
        let text = (0..words)
            .map(|_| format!("w{}", rng.below(50)))
            .collect::<Vec<_>>()
            .join(" ");
        Example::new()
            .with("id", Value::Int(id))
            .with("text", Value::Text(text))
    }))
    .expect("synthetic rows share one schema")
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in registry:
    ///
    /// | key | rows | ids |
    /// |---|---|---|
    /// | mem/raw/train | 17 | 0..=16 |
    /// | mem/raw/val | 7 | 100..=106 |
    /// | mem/raw/test | 5 | 200..=204 |
    /// | mem/raw_large/train | 60 | 1000..=1059 |
    /// | mem/raw_varlen/train | 16 | 2000..=2015 (lengths 4x4, 4x6, 4x4, 4x10) |
    pub fn builtin() -> Self {
        let r = Self::new();
        let fixed = |ids: std::ops::RangeInclusive<i64>| synthetic_table(ids.map(|i| (i, 6)));
        r.insert("mem/raw/train", fixed(0..=16));
        r.insert("mem/raw/val", fixed(100..=106));
        r.insert("mem/raw/test", fixed(200..=204));
        r.insert("mem/raw_large/train", fixed(1000..=1059));
        let lengths = [4, 6, 4, 10];
        r.insert(
            "mem/raw_varlen/train",
            synthetic_table((0..16).map(|i| (2000 + i as i64, lengths[i / 4]))),
        );
        r
    }

    /// Adds or replaces the table under `name`.
    pub fn insert(&self, name: &str, table: Table) {
        self.tables
            .write()
            .expect("registry lock")
            .insert(name.to_string(), table);
    }

    /// The registered names.
    pub fn names(&self) -> Vec<String> {
        self.tables
            .read()
            .expect("registry lock")
            .keys()
            .cloned()
            .collect()
    }
}

impl Source for MemoryRegistry {
    fn load(&self, name: &FullName) -> Result<Table, SourceError> {
        // The whole split: a split instruction is applied by `load_selected`.
        let key = name.split_path();
        self.tables
            .read()
            .expect("registry lock")
            .get(&key)
            .cloned()
            .ok_or_else(|| SourceError::UnknownDataset {
                name: key,
                registry: "in-memory".into(),
                available: self.names().join(", "),
            })
    }

    fn num_rows(&self, name: &FullName) -> Result<usize, SourceError> {
        Ok(self.load(name)?.len())
    }

    fn describe(&self) -> String {
        "in-memory registry".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_matches_the_specification() {
        let r = MemoryRegistry::builtin();
        let load = |n: &str| r.load(&FullName::parse(n).unwrap()).unwrap();
        for (name, n, first) in [
            ("mem/raw/train", 17, 0),
            ("mem/raw/val", 7, 100),
            ("mem/raw/test", 5, 200),
            ("mem/raw_large/train", 60, 1000),
            ("mem/raw_varlen/train", 16, 2000),
        ] {
            let t = load(name);
            assert_eq!(t.len(), n, "{name}");
            for i in 0..n {
                let e = t.row(i).unwrap();
                let id = e.int("id").unwrap();
                assert_eq!(id, first + i as i64);
                assert_eq!(e.text("text").unwrap(), format!("row_{id}"));
                assert!(e
                    .list("token_ids")
                    .unwrap()
                    .iter()
                    .all(|t| (7..=56).contains(t)));
            }
        }
        let v = load("mem/raw_varlen/train");
        let lens: Vec<usize> = (0..16)
            .map(|i| v.row(i).unwrap().list("token_ids").unwrap().len())
            .collect();
        assert_eq!(lens, [4, 4, 4, 4, 6, 6, 6, 6, 4, 4, 4, 4, 10, 10, 10, 10]);
        assert!(load("mem/raw/train")
            .rows()
            .all(|e| e.unwrap().list("token_ids").unwrap().len() == 6));
        // Deterministic content.
        assert_eq!(
            load("mem/raw/train").row(3).unwrap(),
            MemoryRegistry::builtin()
                .load(&FullName::parse("mem/raw/train").unwrap())
                .unwrap()
                .row(3)
                .unwrap()
        );
    }

    #[test]
    fn unknown_name_lists_what_exists() {
        let e = MemoryRegistry::builtin()
            .load(&FullName::parse("mem/nope/train").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mem/nope/train") && e.contains("mem/raw/train"),
            "{e}"
        );
    }
}
