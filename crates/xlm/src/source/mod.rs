//! Sources: where `prepare_data` gets raw rows. A source is chosen by
//! configuration (`full_name` and, for local files, `ds_type` +
//! `data_files`), never by patching code.
//!
//! - [`MemoryRegistry`]: tables held in memory, keyed by full name; the
//!   built-in one holds the test datasets (`mem/raw/train`, ...).
//! - [`LocalFiles`]: jsonl/json and csv files on disk.
//!
//! - [`HubSource`]: the Hugging Face Hub through the local hub cache
//!   (offline mode reads only the cache).
//!
//! Sources read whole splits (`name.split`, never an instruction). Split
//! instructions in `full_name` (`train[:-100000]`, `train[:10%]+test`,
//! parsed by [`FullName`]) are applied to any source in one place,
//! [`load_selected_chunks`], which keeps memory bounded by the chunk size.

mod full_name;
#[cfg(feature = "hub")]
mod hub;
mod local;
mod memory;
#[cfg(feature = "hub")]
mod parquet;
mod select;

pub use full_name::{FullName, Rounding, SplitInstruction, SplitSlice};
#[cfg(feature = "hub")]
pub use hub::{select_split_files, HubSource};
pub use local::{DataFiles, LocalFiles, LocalFormat, OneOrMany};
pub use memory::{synthetic_table, synthetic_text_table, MemoryRegistry};
pub use select::{load_selected, load_selected_chunks};

use crate::data::Table;
use std::path::PathBuf;
use thiserror::Error;

/// Why a source could not produce rows.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SourceError {
    /// `full_name` has the wrong number of path segments.
    #[error("full_name `{name}` has {segments} path segment(s); expected `repo/dataset/split` (3) or `repo/dataset/config/split` (4)")]
    FullName {
        /// The full name.
        name: String,
        /// Its number of path segments.
        segments: usize,
    },
    /// A registry does not have the dataset.
    #[error("dataset `{name}` is not in the {registry} registry (it has: {available})")]
    UnknownDataset {
        /// The dataset.
        name: String,
        /// The registry.
        registry: String,
        /// The datasets it has.
        available: String,
    },
    /// No source can load the dataset.
    #[error("no source can load `{name}`: {hint}")]
    NoSource {
        /// The dataset.
        name: String,
        /// How to make it loadable.
        hint: String,
    },
    /// A data file does not parse.
    #[error("{path}:{line}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line at fault.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `data_files` has no entry for the split.
    #[error("data_files has no entry for split `{split}` (it has: {available}); add one or use a single file list")]
    NoSplit {
        /// The split asked for.
        split: String,
        /// The splits it has.
        available: String,
    },
    /// A split instruction in `full_name` is malformed, or cannot be
    /// resolved against the split's size.
    #[error("full_name `{name}`: {reason}")]
    Slice {
        /// The full name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A split instruction selects no rows.
    #[error("`{name}`: split instruction `{instruction}` selects no rows ({detail})")]
    EmptySlice {
        /// The full name.
        name: String,
        /// The instruction.
        instruction: String,
        /// What each part resolved to.
        detail: String,
    },
    /// A row of the table being streamed cannot be read (a damaged cache).
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The consumer of a streamed source stopped it (its error says why).
    #[error("the consumer of the stream stopped it")]
    Stopped,
}

/// What a [`ChunkSink`] returns to stop a stream. The sink keeps its own
/// error; the source ends with [`SourceError::Stopped`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl From<Stopped> for SourceError {
    fn from(_: Stopped) -> Self {
        SourceError::Stopped
    }
}

/// Receives the chunks of a streamed source, in order.
pub type ChunkSink<'a> = dyn FnMut(Table) -> Result<(), Stopped> + 'a;

/// Hands `table` to `sink` as tables of at most `chunk_rows` rows, in order.
pub fn chunk_table(
    table: &Table,
    chunk_rows: usize,
    sink: &mut ChunkSink<'_>,
) -> Result<(), SourceError> {
    let mut start = 0;
    while start < table.len() {
        let end = (start + chunk_rows).min(table.len());
        sink(table.slice(start..end)?)?;
        start = end;
    }
    Ok(())
}

/// A place raw rows come from.
pub trait Source: Send + Sync {
    /// Loads every row of `name` (a parsed `full_name`; `split` picks the
    /// split; a split instruction is not the source's business, see
    /// [`load_selected`]).
    fn load(&self, name: &FullName) -> Result<Table, SourceError>;

    /// Streams the rows of `name` as tables of at most `chunk_rows` rows, in
    /// order, so a large input never has to be in memory at once. The
    /// default loads everything and slices it; file sources read incrementally.
    fn load_chunks(
        &self,
        name: &FullName,
        chunk_rows: usize,
        sink: &mut ChunkSink<'_>,
    ) -> Result<(), SourceError> {
        chunk_table(&self.load(name)?, chunk_rows, sink)
    }

    /// The number of rows of split `name` (resolves negative and percent
    /// bounds of split instructions). The default streams the split and
    /// counts; sources override it with something cheaper (a table's
    /// length, a line count, parquet metadata).
    fn num_rows(&self, name: &FullName) -> Result<usize, SourceError> {
        let mut n = 0;
        self.load_chunks(name, 4096, &mut |t| {
            n += t.len();
            Ok(())
        })?;
        Ok(n)
    }

    /// A short description for logs (`memory registry`, `local csv files`).
    fn describe(&self) -> String;
}
