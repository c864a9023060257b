use crate::data::ColumnSchema;
use serde::{Deserialize, Serialize};

/// Name of the manifest file; written last, so its presence marks a complete cache.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The `format` field every manifest carries.
pub const FORMAT_NAME: &str = "xlm-cache";
/// The layout version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The description of a cache directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Layout version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// Number of rows.
    pub rows: u64,
    /// The columns in order.
    pub columns: Vec<ColumnEntry>,
    /// The xlm version that wrote the cache.
    pub created_by: String,
}

/// One column's schema and files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnEntry {
    /// Name, kind and element width.
    #[serde(flatten)]
    pub schema: ColumnSchema,
    /// Data file name inside the cache directory.
    pub data_file: String,
    /// Its size in bytes.
    pub data_bytes: u64,
    /// CRC-32 of its contents.
    pub data_crc32: u32,
    /// Offsets file (token and text columns): rows + 1 little-endian u64.
    pub offsets_file: Option<String>,
    /// Its size in bytes.
    pub offsets_bytes: Option<u64>,
    /// CRC-32 of its contents.
    pub offsets_crc32: Option<u32>,
}
