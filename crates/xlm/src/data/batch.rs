//! Batches: named 2-D int64 arrays, the examples' ids and the plan's sample indices.

use serde::Serialize;

/// A 2-D int64 array: a flat row-major buffer plus its shape.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Array2 {
    /// Row-major values, `shape[0] * shape[1]` of them.
    pub data: Vec<i64>,
    /// `[rows, columns]`.
    pub shape: [usize; 2],
}

impl Array2 {
    /// An array over `data` with `shape`.
    pub fn new(data: Vec<i64>, shape: [usize; 2]) -> Self {
        debug_assert_eq!(data.len(), shape[0] * shape[1]);
        Self { data, shape }
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[i64] {
        &self.data[i * self.shape[1]..(i + 1) * self.shape[1]]
    }
}

/// One batch: named 2-D arrays, the examples' `id`s, and the plan's sample
/// indices (what identifies a packed block, which has no single id).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Batch {
    /// Named arrays in column order.
    pub arrays: Vec<(String, Array2)>,
    /// `id` of each example (empty when the examples have none).
    pub ids: Vec<i64>,
    /// Sample index (in the plan's sample space) of each row.
    pub samples: Vec<u64>,
}

impl Batch {
    /// Adds or replaces an array.
    pub fn insert(&mut self, name: &str, a: Array2) {
        match self.arrays.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = a,
            None => self.arrays.push((name.to_string(), a)),
        }
    }

    /// The array called `name`.
    pub fn get(&self, name: &str) -> Option<&Array2> {
        self.arrays.iter().find(|(n, _)| n == name).map(|(_, a)| a)
    }

    /// Rows in the batch.
    pub fn len(&self) -> usize {
        self.samples
            .len()
            .max(self.arrays.first().map(|(_, a)| a.shape[0]).unwrap_or(0))
    }

    /// True for a batch with no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total number of int64 values over all arrays.
    pub fn num_values(&self) -> usize {
        self.arrays.iter().map(|(_, a)| a.data.len()).sum()
    }
}
