//! The on-disk cache: a directory of flat little-endian column files plus a
//! `manifest.json`, memory-mapped on open.
//!
//! Invariants:
//! - A directory is a cache only if its `manifest.json` parses, has this
//!   format and version, and every file it names has the recorded size.
//! - Writes are atomic: files are built in a hidden sibling directory,
//!   fsynced, the manifest is written last, and the directory is renamed into
//!   place. A crash leaves either the old cache, no cache, or a hidden
//!   temporary directory that is never taken for a cache.
//! - Opening costs O(columns), not O(rows): nothing is read but the manifest;
//!   pages of the column files are faulted in only when rows are read.
//!
//! See `docs/cache-format.md` for the layout and why it is not Arrow IPC.

mod manifest;
mod read;
mod write;

pub use manifest::{ColumnEntry, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE};
pub use read::{is_cache, open, verify};
pub use write::{write, CacheWriter};

use std::path::PathBuf;
use thiserror::Error;

/// Errors of the cache layer; each names the directory or file at fault.
#[derive(Debug, Error)]
pub enum CacheError {
    #[error("{path}: not an xlm cache ({reason}); run prepare_data to build it, or delete the directory")]
    NotACache { path: PathBuf, reason: String },
    #[error("{path}: cache format version {found} is not supported by this xlm (supports {supported}); rebuild the cache with rewrite_manual_cache=true")]
    Version {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: {reason}; the cache is damaged, rebuild it with rewrite_manual_cache=true")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CacheError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.into(),
            source,
        }
    }
}
