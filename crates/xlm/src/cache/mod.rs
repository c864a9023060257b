//! The on-disk cache: a directory of flat little-endian column files plus a
//! `manifest.json`, memory-mapped on open.
//!
//! Invariants:
//! - A directory is a cache only if its `manifest.json` parses, has this
//!   format and version, names only plain files inside the directory, and
//!   every file it names has the size the manifest (checked arithmetic) says.
//! - Writes are atomic: files are built in a hidden sibling directory,
//!   fsynced, the manifest is written last, and the directory is swapped into
//!   place in one step (`renameat2(RENAME_EXCHANGE)`; two renames where the
//!   filesystem cannot exchange). A crash leaves the old cache or the new
//!   one, plus at most a hidden directory that the next writer removes.
//! - A writer replaces only an xlm cache (or an empty directory): anything
//!   else at the target is left alone and reported.
//! - Opening costs O(columns), not O(rows): nothing is read but the manifest
//!   and the first and last offsets; each row's offsets are checked when the
//!   row is read, and [`verify`] checks every row and checksum.
//!
//! See `docs/cache-format.md` for the layout and why it is not Arrow IPC.

mod manifest;
mod read;
mod write;

pub use manifest::{ColumnEntry, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE};
pub use read::{is_cache, open, verify};
pub use write::{host_tag, write, CacheWriter};

use std::path::PathBuf;
use thiserror::Error;

/// Errors of the cache layer; each names the directory or file at fault.
#[derive(Debug, Error)]
#[non_exhaustive]
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
    /// The target of a cache write holds something that is not an xlm
    /// cache, so the writer will not replace (delete) it.
    #[error("{path}: {reason}; xlm only replaces its own caches, so it was left as it is: move or delete it yourself, or point manual_cache_dir elsewhere")]
    Occupied {
        /// The target directory.
        path: PathBuf,
        /// What is there.
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
