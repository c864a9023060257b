//! Collation: a list of [`Example`]s to one [`Batch`].
//!
//! Depends on the data model only. The named collators that configs refer
//! to (`collate_fn: id_tracking`, ...) are built in `registry`; the loader
//! recognises a [`StackCollator`] and collates straight from the cache into
//! the batch buffers (same output as [`Collate::collate`]).

use crate::data::{Array2, Batch, Example, Value};
use thiserror::Error;

/// A collator could not build a batch.
#[derive(Debug, Error)]
#[error("collator `{collator}` failed: {reason}")]
pub struct CollateError {
    /// The collator's name.
    pub collator: String,
    /// What went wrong.
    pub reason: String,
}

impl CollateError {
    /// A failure of `collator` with a reason.
    pub fn new(collator: &str, reason: impl std::fmt::Display) -> Self {
        Self {
            collator: collator.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Turns a list of examples into one batch.
pub trait Collate: Send + Sync {
    /// Collates `examples` (never empty) into a batch.
    fn collate(&self, examples: &[Example]) -> Result<Batch, CollateError>;

    /// The stacking rule, when this collator is a [`StackCollator`]: lets
    /// the loader collate straight from the cache into the batch buffers,
    /// without building examples (same output as `collate`).
    fn as_stack(&self) -> Option<&StackCollator> {
        None
    }
}

/// How rows of unequal length are made rectangular.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    /// Rows must already have equal lengths per column.
    None,
    /// Pad or truncate every row to this length.
    Fixed(usize),
    /// Pad to the longest row of the batch.
    Dynamic,
}

/// Stacks every token-list column into a `[batch, length]` array and carries
/// the `id`s; int64 columns other than `id` and strings are not batched.
///
/// Padding values: `input_ids` -> `pad_id`, `attention_mask` -> 0,
/// `token_type_ids` -> 2, any other column -> 0.
#[derive(Debug, Clone)]
pub struct StackCollator {
    name: &'static str,
    pad: PadMode,
    pad_id: i64,
    require_ids: bool,
}

impl StackCollator {
    /// A collator with the given padding rule.
    pub fn new(name: &'static str, pad: PadMode, pad_id: i64, require_ids: bool) -> Self {
        Self {
            name,
            pad,
            pad_id,
            require_ids,
        }
    }

    /// Collator name, for errors.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The padding rule.
    pub fn pad(&self) -> PadMode {
        self.pad
    }

    /// Whether every example must carry an `id`.
    pub fn require_ids(&self) -> bool {
        self.require_ids
    }

    /// The padding value of `column`.
    pub fn pad_value(&self, column: &str) -> i64 {
        match column {
            "input_ids" => self.pad_id,
            "token_type_ids" => 2,
            _ => 0,
        }
    }
}

impl Collate for StackCollator {
    fn as_stack(&self) -> Option<&StackCollator> {
        Some(self)
    }

    fn collate(&self, examples: &[Example]) -> Result<Batch, CollateError> {
        let fail = |reason: String| CollateError::new(self.name, reason);
        let first = examples.first().ok_or_else(|| fail("empty batch".into()))?;
        let mut batch = Batch::default();
        let columns: Vec<&str> = first
            .fields()
            .filter(|(_, v)| matches!(v, Value::List(_)))
            .map(|(n, _)| n)
            .collect();
        for col in columns {
            let rows: Vec<&[i64]> = examples
                .iter()
                .map(|e| e.list(col))
                .collect::<Result<_, _>>()
                .map_err(|e| fail(e.to_string()))?;
            let width = match self.pad {
                PadMode::Fixed(n) => n,
                PadMode::Dynamic => rows.iter().map(|r| r.len()).max().unwrap_or(0),
                PadMode::None => {
                    let w = rows[0].len();
                    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != w) {
                        return Err(fail(format!(
                            "column `{col}` has length {w} in example 0 but {} in example {i}; use the `pad_truncate` or `dynamic_padding` collator for variable-length rows",
                            r.len()
                        )));
                    }
                    w
                }
            };
            let pad = self.pad_value(col);
            let mut data = Vec::with_capacity(width * rows.len());
            for r in &rows {
                let n = r.len().min(width);
                data.extend_from_slice(&r[..n]);
                data.resize(data.len() + (width - n), pad);
            }
            batch.insert(col, Array2::new(data, [rows.len(), width]));
        }
        for (i, e) in examples.iter().enumerate() {
            match e.get("id") {
                Some(Value::Int(id)) => batch.ids.push(*id),
                _ if self.require_ids => {
                    return Err(fail(format!(
                        "example {i} in the batch has no int64 `id` column; id tracking needs one"
                    )))
                }
                _ => {}
            }
        }
        if batch.ids.len() != examples.len() {
            batch.ids.clear();
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(id: i64, n: usize) -> Example {
        Example::new()
            .with("id", Value::Int(id))
            .with(
                "input_ids",
                Value::List((0..n as i64).map(|x| x + 10).collect()),
            )
            .with("attention_mask", Value::List(vec![1; n]))
            .with("token_type_ids", Value::List(vec![0; n]))
            .with("text", Value::Text("t".into()))
    }

    #[test]
    fn stacks_equal_rows_and_carries_ids() {
        let b = StackCollator::new("id_tracking", PadMode::None, 0, true)
            .collate(&[ex(3, 2), ex(4, 2)])
            .unwrap();
        assert_eq!(b.ids, [3, 4]);
        assert_eq!(b.get("input_ids").unwrap().shape, [2, 2]);
        assert_eq!(b.get("input_ids").unwrap().data, [10, 11, 10, 11]);
        assert!(b.get("text").is_none());
        let e = StackCollator::new("default", PadMode::None, 0, false)
            .collate(&[ex(3, 2), ex(4, 3)])
            .unwrap_err();
        assert!(e.to_string().contains("example 1"), "{e}");
        let mut no_id = ex(1, 2);
        no_id.remove("id");
        assert!(StackCollator::new("id_tracking", PadMode::None, 0, true)
            .collate(&[no_id])
            .is_err());
    }

    #[test]
    fn pads_and_truncates() {
        let c = StackCollator::new("pad_truncate", PadMode::Fixed(3), 9, false);
        let b = c.collate(&[ex(1, 1), ex(2, 5)]).unwrap();
        assert_eq!(b.get("input_ids").unwrap().data, [10, 9, 9, 10, 11, 12]);
        assert_eq!(b.get("attention_mask").unwrap().data, [1, 0, 0, 1, 1, 1]);
        assert_eq!(b.get("token_type_ids").unwrap().data, [0, 2, 2, 0, 0, 0]);
        let d = StackCollator::new("dynamic_padding", PadMode::Dynamic, 0, false);
        assert_eq!(
            d.collate(&[ex(1, 1), ex(2, 4)])
                .unwrap()
                .get("input_ids")
                .unwrap()
                .shape,
            [2, 4]
        );
    }
}
