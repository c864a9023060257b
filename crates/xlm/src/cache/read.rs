use super::{CacheError, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE};
use crate::data::{last_u64, read_u64, Bytes, Column, ColumnKind, Table};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

fn read_manifest(dir: &Path) -> Result<Manifest, CacheError> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(|e| CacheError::NotACache {
        path: dir.to_path_buf(),
        reason: format!("cannot read {MANIFEST_FILE}: {e}"),
    })?;
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| CacheError::NotACache {
        path: dir.to_path_buf(),
        reason: format!("invalid {MANIFEST_FILE}: {e}"),
    })?;
    if m.format != FORMAT_NAME {
        return Err(CacheError::NotACache {
            path: dir.to_path_buf(),
            reason: format!("format is `{}`, expected `{FORMAT_NAME}`", m.format),
        });
    }
    if m.format_version != FORMAT_VERSION {
        return Err(CacheError::Version {
            path: dir.to_path_buf(),
            found: m.format_version,
            supported: FORMAT_VERSION,
        });
    }
    Ok(m)
}

/// True when `dir` holds a complete cache (its manifest is valid).
pub fn is_cache(dir: &Path) -> bool {
    read_manifest(dir).is_ok()
}

fn map(dir: &Path, file: &str, expected: u64) -> Result<Bytes, CacheError> {
    let path = dir.join(file);
    let f = File::open(&path).map_err(|e| CacheError::io(&path, e))?;
    let len = f.metadata().map_err(|e| CacheError::io(&path, e))?.len();
    if len != expected {
        return Err(CacheError::Corrupt {
            path,
            reason: format!("size is {len} bytes, the manifest says {expected}"),
        });
    }
    if len == 0 {
        return Ok(Bytes::owned(Vec::new()));
    }
    // SAFETY: cache files are immutable once renamed into place (rewrites go
    // to a new directory), so the mapping is not modified while it lives.
    let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| CacheError::io(&path, e))?;
    Ok(Bytes::Mapped(Arc::new(mmap)))
}

/// Opens the cache at `dir` by mapping its files; reads no rows.
///
/// Checks are O(1) in the number of rows: manifest, file sizes, and the first
/// and last row offsets of list columns.
pub fn open(dir: &Path) -> Result<Table, CacheError> {
    let m = read_manifest(dir)?;
    let rows = m.rows as usize;
    let mut columns = Vec::with_capacity(m.columns.len());
    for c in &m.columns {
        let corrupt = |reason: String| CacheError::Corrupt {
            path: dir.join(&c.data_file),
            reason,
        };
        let expected_width = match c.schema.kind {
            ColumnKind::Int64 => c.schema.width == 8,
            ColumnKind::Tokens => c.schema.width == 2 || c.schema.width == 4,
            ColumnKind::Text => c.schema.width == 1,
        };
        if !expected_width {
            return Err(corrupt(format!(
                "column `{}` has width {} which its kind does not allow",
                c.schema.name, c.schema.width
            )));
        }
        let data = map(dir, &c.data_file, c.data_bytes)?;
        let offsets = match (c.schema.kind, &c.offsets_file, c.offsets_bytes) {
            (ColumnKind::Int64, None, None) => {
                if data.len() != rows * 8 {
                    return Err(corrupt(format!(
                        "{} bytes for {rows} int64 rows",
                        data.len()
                    )));
                }
                None
            }
            (ColumnKind::Tokens | ColumnKind::Text, Some(f), Some(n)) => {
                if n != (rows as u64 + 1) * 8 {
                    return Err(corrupt(format!(
                        "offsets hold {} entries for {rows} rows",
                        n / 8
                    )));
                }
                let off = map(dir, f, n)?;
                let (first, last) = (read_u64(&off, 0), last_u64(&off));
                if first != 0 || last * c.schema.width as u64 != data.len() as u64 {
                    return Err(corrupt(format!(
                        "offsets span {first}..{last} but the data holds {} bytes",
                        data.len()
                    )));
                }
                Some(off)
            }
            _ => {
                return Err(corrupt(format!(
                    "column `{}`: offsets file does not match its kind",
                    c.schema.name
                )))
            }
        };
        columns.push(Column::from_parts(c.schema.clone(), data, offsets));
    }
    let summary = serde_json::to_vec(&(&m.rows, &m.columns)).expect("manifest serialises");
    Ok(Table::from_columns(rows, columns).with_fingerprint(crate::hash::fingerprint(&summary)))
}

/// Full check of a cache: every file's CRC-32, offsets monotone, text UTF-8.
/// Reads every byte (O(size)); `open` does not call it.
pub fn verify(dir: &Path) -> Result<Manifest, CacheError> {
    let m = read_manifest(dir)?;
    let table = open(dir)?;
    for (entry, col) in m.columns.iter().zip(table.columns()) {
        let bad = |reason: String| CacheError::Corrupt {
            path: dir.join(&entry.data_file),
            reason,
        };
        if crc32fast::hash(col.data()) != entry.data_crc32 {
            return Err(bad("CRC-32 mismatch".into()));
        }
        if let (Some(off), Some(crc)) = (col.offsets(), entry.offsets_crc32) {
            if crc32fast::hash(off) != crc {
                return Err(bad("offsets CRC-32 mismatch".into()));
            }
            let mut prev = 0u64;
            for c in off.chunks_exact(8) {
                let v = read_u64(c, 0);
                if v < prev {
                    return Err(bad("offsets decrease".into()));
                }
                prev = v;
            }
            if entry.schema.kind == ColumnKind::Text && std::str::from_utf8(col.data()).is_err() {
                return Err(bad("text is not UTF-8".into()));
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Example, Value};

    fn table() -> Table {
        Table::from_examples((0..5).map(|i| {
            Example::new()
                .with("id", Value::Int(i))
                .with("token_ids", Value::List((0..i).collect()))
                .with("text", Value::Text(format!("row_{i}")))
        }))
        .unwrap()
    }

    #[test]
    fn write_open_round_trip_and_verify() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        crate::cache::write(&table(), &dir).unwrap();
        let t = open(&dir).unwrap();
        assert_eq!(
            t.rows().collect::<Vec<_>>(),
            table().rows().collect::<Vec<_>>()
        );
        verify(&dir).unwrap();
        // Rewriting replaces atomically and leaves no temporary directories.
        crate::cache::write(&table(), &dir).unwrap();
        let names: Vec<_> = std::fs::read_dir(d.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn directory_without_manifest_is_not_a_cache() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        crate::cache::write(&table(), &dir).unwrap();
        std::fs::remove_file(dir.join(MANIFEST_FILE)).unwrap();
        assert!(!is_cache(&dir));
        let err = open(&dir).unwrap_err().to_string();
        assert!(err.contains("not an xlm cache"), "{err}");
    }

    #[test]
    fn truncated_file_and_flipped_byte_are_caught() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        crate::cache::write(&table(), &dir).unwrap();
        let f = dir.join("col1.data");
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&f, &bytes).unwrap();
        assert!(verify(&dir).unwrap_err().to_string().contains("CRC"));
        bytes.pop();
        std::fs::write(&f, &bytes).unwrap();
        assert!(open(&dir).unwrap_err().to_string().contains("size"));
    }

    #[test]
    fn future_version_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        crate::cache::write(&table(), &dir).unwrap();
        let p = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("\"format_version\": 1", "\"format_version\": 99");
        std::fs::write(&p, text).unwrap();
        assert!(matches!(
            open(&dir),
            Err(CacheError::Version { found: 99, .. })
        ));
    }
}
