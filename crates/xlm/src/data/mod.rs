//! The data model: a [`Table`] of named, typed columns with a length N, and
//! the [`Example`] (one row as named [`Value`]s) that functions work on.
//!
//! Tables hold their columns as little-endian byte buffers, owned in memory
//! or memory-mapped from the cache; both have the same layout, so writing a
//! cache is writing those buffers and opening one is mapping them back.

mod batch;
mod bytes;
mod example;
mod table;

pub use batch::{Array2, Batch};
pub use bytes::Bytes;
pub use example::{Example, Value};
pub use table::{
    last_u64, read_u64, widen_u16_to_u32, Column, ColumnKind, ColumnSchema, Table, TableBuilder,
    TokenSlice,
};

use std::path::{Path, PathBuf};
use thiserror::Error;

/// A value or column had the wrong kind, or a row did not fit its table.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DataError {
    /// A value or column has the wrong kind.
    #[error("column `{column}`: expected {expected}, found {found}")]
    Kind {
        /// The column.
        column: String,
        /// The kind expected.
        expected: &'static str,
        /// The kind found.
        found: &'static str,
    },
    /// An example lacks a column.
    #[error("example is missing column `{column}` (it has: {present})")]
    MissingColumn {
        /// The missing column.
        column: String,
        /// The columns the example has.
        present: String,
    },
    /// A token id does not fit in an unsigned 32-bit id.
    #[error("column `{column}`: token id {value} is out of range 0..=4294967295 (token columns store unsigned 32-bit ids)")]
    TokenRange {
        /// The column.
        column: String,
        /// The offending value.
        value: i64,
    },
    /// A row of a column cannot be read: its offsets are out of order or
    /// out of bounds, or its text is not UTF-8. Only a damaged or hostile
    /// cache has such rows (tables built in memory never do); `path` names
    /// the file at fault.
    #[error("{}column `{column}`, row {row}: {reason}{}", file_prefix(path.as_deref()), damaged_hint(path.as_deref()))]
    Row {
        /// The column file at fault (offsets file for offsets, data file for
        /// bytes); `None` for a column built in memory.
        path: Option<PathBuf>,
        /// The column.
        column: String,
        /// The table row.
        row: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A row's columns differ from the table's.
    #[error("row {row} has columns [{found}] but the table has [{expected}]; every row needs the same columns")]
    Columns {
        /// Index of the row.
        row: usize,
        /// The row's columns.
        found: String,
        /// The table's columns.
        expected: String,
    },
}

fn file_prefix(path: Option<&Path>) -> String {
    path.map(|p| format!("{}: ", p.display()))
        .unwrap_or_default()
}

fn damaged_hint(path: Option<&Path>) -> &'static str {
    if path.is_some() {
        "; the cache is damaged: rebuild it with rewrite_manual_cache=true (`xlm inspect --verify <cache>` checks every row)"
    } else {
        ""
    }
}
