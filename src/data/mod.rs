//! The data model: a [`Table`] of named, typed columns with a length N, and
//! the [`Example`] (one row as named [`Value`]s) that functions work on.
//!
//! Tables hold their columns as little-endian byte buffers, owned in memory
//! or memory-mapped from the cache; both have the same layout, so writing a
//! cache is writing those buffers and opening one is mapping them back.

mod bytes;
mod example;
mod table;

pub use bytes::Bytes;
pub use example::{Example, Value};
pub use table::{
    last_u64, read_u64, widen_u16_to_u32, Column, ColumnKind, ColumnSchema, Table, TableBuilder,
    TokenSlice,
};

use thiserror::Error;

/// A value or column had the wrong kind, or a row did not fit its table.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("column `{column}`: expected {expected}, found {found}")]
    Kind {
        column: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("example is missing column `{column}` (it has: {present})")]
    MissingColumn { column: String, present: String },
    #[error("column `{column}`: token id {value} is out of range 0..=4294967295 (token columns store unsigned 32-bit ids)")]
    TokenRange { column: String, value: i64 },
    #[error("row {row} has columns [{found}] but the table has [{expected}]; every row needs the same columns")]
    Columns {
        row: usize,
        found: String,
        expected: String,
    },
}
