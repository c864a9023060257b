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
    /// The directory is not an xlm cache.
    #[error("{path}: not an xlm cache ({reason}); run prepare_data to build it, or delete the directory")]
    NotACache {
        /// The directory.
        path: PathBuf,
        /// Why it is not a cache.
        reason: String,
    },
    /// The cache has a format version this build cannot read.
    #[error("{path}: cache format version {found} is not supported by this xlm (supports {supported}); rebuild the cache with rewrite_manual_cache=true")]
    Version {
        /// The cache directory.
        path: PathBuf,
        /// The version in the manifest.
        found: u32,
        /// The version this build supports.
        supported: u32,
    },
    /// The cache is damaged.
    #[error("{path}: {reason}; the cache is damaged, rebuild it with rewrite_manual_cache=true")]
    Corrupt {
        /// The file or directory at fault.
        path: PathBuf,
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
}

impl CacheError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.into(),
            source,
        }
    }
}
