use super::{CacheError, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE};
use crate::data::{read_u64, Bytes, Column, ColumnKind, DataError, Table};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// A manifest larger than this is not one (a real one is ~200 bytes a column).
pub(super) const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// More rows than any cache holds (its offsets file alone would be 2 PiB);
/// bounds the row count of a manifest whose files cannot (no columns).
pub(super) const MAX_ROWS: u64 = 1 << 48;

/// Opens `path` for reading if it is a regular file: never follows a
/// symbolic link, never opens a FIFO or device (which could block or never end).
pub(super) fn open_regular(path: &Path) -> std::io::Result<File> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        let what = if meta.file_type().is_symlink() {
            "a symbolic link"
        } else if meta.is_dir() {
            "a directory"
        } else {
            "not a regular file"
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("is {what}; cache files are regular files inside the cache directory"),
        ));
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    options.open(path)
}

/// The bytes of `dir`'s manifest, at most [`MAX_MANIFEST_BYTES`].
pub(super) fn manifest_bytes(dir: &Path) -> Result<Vec<u8>, CacheError> {
    let path = dir.join(MANIFEST_FILE);
    let not_a_cache = |reason: String| CacheError::NotACache {
        path: dir.to_path_buf(),
        reason,
    };
    let f = open_regular(&path)
        .map_err(|e| not_a_cache(format!("cannot read {MANIFEST_FILE}: {e}")))?;
    let mut text = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| not_a_cache(format!("cannot read {MANIFEST_FILE}: {e}")))?;
    if text.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(not_a_cache(format!(
            "{MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes"
        )));
    }
    Ok(text)
}

fn read_manifest(dir: &Path) -> Result<Manifest, CacheError> {
    let text = manifest_bytes(dir)?;
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

/// Checks that a file name from the manifest is a plain name of a file
/// inside the cache directory: not empty, not `.`/`..`, no path separator,
/// not absolute, not the manifest itself.
fn plain_name(dir: &Path, name: &str) -> Result<(), CacheError> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && !name.contains(['/', '\\', '\0'])
        && name != MANIFEST_FILE
        && matches!(
            Path::new(name).components().collect::<Vec<_>>().as_slice(),
            [Component::Normal(n)] if *n == std::ffi::OsStr::new(name)
        );
    if plain {
        Ok(())
    } else {
        Err(CacheError::Corrupt {
            path: dir.join(MANIFEST_FILE),
            reason: format!(
                "file name {name:?} is not a plain file name inside the cache directory (no `/`, `..`, or absolute paths)"
            ),
        })
    }
}

fn map(dir: &Path, file: &str, expected: u64) -> Result<(PathBuf, Bytes), CacheError> {
    plain_name(dir, file)?;
    let path = dir.join(file);
    let f = open_regular(&path).map_err(|e| CacheError::io(&path, e))?;
    let len = f.metadata().map_err(|e| CacheError::io(&path, e))?.len();
    if len != expected {
        return Err(CacheError::Corrupt {
            path,
            reason: format!("size is {len} bytes, the manifest says {expected}"),
        });
    }
    if len == 0 {
        return Ok((path, Bytes::owned(Vec::new())));
    }
    // SAFETY: cache files are immutable once renamed into place (rewrites go
    // to a new directory), so the mapping is not modified while it lives.
    let mmap = unsafe { memmap2::Mmap::map(&f) }.map_err(|e| CacheError::io(&path, e))?;
    Ok((path, Bytes::Mapped(Arc::new(mmap))))
}

/// Opens the cache at `dir` by mapping its files; reads no rows.
///
/// Checks are O(1) in the number of rows: the manifest (plain file names,
/// sizes computed with checked arithmetic), file sizes against it, and the
/// first and last row offsets of list columns. Each row's offsets are
/// checked when the row is read (see [`Column`]); [`verify`] checks all.
pub fn open(dir: &Path) -> Result<Table, CacheError> {
    let m = read_manifest(dir)?;
    let manifest_error = |reason: String| CacheError::Corrupt {
        path: dir.join(MANIFEST_FILE),
        reason,
    };
    let rows = match usize::try_from(m.rows) {
        Ok(rows) if m.rows <= MAX_ROWS => rows,
        _ => {
            return Err(manifest_error(format!(
                "{} rows is more than a cache can hold ({MAX_ROWS})",
                m.rows
            )))
        }
    };
    let mut names = HashSet::new();
    let mut columns = Vec::with_capacity(m.columns.len());
    for c in &m.columns {
        if !names.insert(c.schema.name.as_str()) {
            return Err(manifest_error(format!(
                "column `{}` appears twice",
                c.schema.name
            )));
        }
        plain_name(dir, &c.data_file)?;
        if let Some(f) = &c.offsets_file {
            plain_name(dir, f)?;
        }
        let corrupt = |reason: String| CacheError::Corrupt {
            path: dir.join(&c.data_file),
            reason,
        };
        let width = c.schema.width as u64;
        let expected_width = match c.schema.kind {
            ColumnKind::Int64 => width == 8,
            ColumnKind::Tokens => width == 2 || width == 4,
            ColumnKind::Text => width == 1,
        };
        if !expected_width {
            return Err(corrupt(format!(
                "column `{}` has width {} which its kind does not allow",
                c.schema.name, c.schema.width
            )));
        }
        let column = match (c.schema.kind, &c.offsets_file, c.offsets_bytes) {
            (ColumnKind::Int64, None, None) => {
                match m.rows.checked_mul(8) {
                    Some(n) if n == c.data_bytes => {}
                    _ => {
                        return Err(corrupt(format!(
                            "{} bytes for {} int64 rows",
                            c.data_bytes, m.rows
                        )))
                    }
                }
                let (path, data) = map(dir, &c.data_file, c.data_bytes)?;
                Column::from_parts(c.schema.clone(), data, None).with_files(path, None)
            }
            (ColumnKind::Tokens | ColumnKind::Text, Some(f), Some(n)) => {
                if m.rows.checked_add(1).and_then(|r| r.checked_mul(8)) != Some(n) {
                    return Err(corrupt(format!(
                        "offsets file of {n} bytes for {} rows (it needs 8 bytes per row, plus 8)",
                        m.rows
                    )));
                }
                if c.data_bytes % width != 0 {
                    return Err(corrupt(format!(
                        "{} bytes is not a whole number of {width}-byte elements",
                        c.data_bytes
                    )));
                }
                let (data_path, data) = map(dir, &c.data_file, c.data_bytes)?;
                let (off_path, off) = map(dir, f, n)?;
                let (first, last) = (read_u64(&off, 0), read_u64(&off, rows));
                if first != 0 || last.checked_mul(width) != Some(data.len() as u64) {
                    return Err(CacheError::Corrupt {
                        path: off_path,
                        reason: format!(
                            "offsets span {first}..{last} but the data file {} holds {} bytes of {width}-byte elements",
                            data_path.display(),
                            data.len()
                        ),
                    });
                }
                Column::from_parts(c.schema.clone(), data, Some(off))
                    .with_files(data_path, Some(off_path))
            }
            _ => {
                return Err(corrupt(format!(
                    "column `{}`: offsets file does not match its kind",
                    c.schema.name
                )))
            }
        };
        columns.push(column);
    }
    let summary = serde_json::to_vec(&(&m.rows, &m.columns)).expect("manifest serialises");
    Ok(Table::from_columns(rows, columns).with_fingerprint(crate::hash::fingerprint(&summary)))
}

/// A row error of a cache column as a cache error naming the file.
fn row_corrupt(e: DataError) -> CacheError {
    match e {
        DataError::Row {
            path: Some(path),
            column,
            row,
            reason,
        } => CacheError::Corrupt {
            path,
            reason: format!("column `{column}`, row {row}: {reason}"),
        },
        other => CacheError::Corrupt {
            path: PathBuf::new(),
            reason: other.to_string(),
        },
    }
}

/// Full check of a cache: every file's CRC-32, and every row: offsets in
/// order and in bounds, text UTF-8. Reads every byte (O(size)); `open` does
/// not call it. Errors name the file (and row).
pub fn verify(dir: &Path) -> Result<Manifest, CacheError> {
    let m = read_manifest(dir)?;
    let table = open(dir)?;
    for (entry, col) in m.columns.iter().zip(table.columns()) {
        if crc32fast::hash(col.data()) != entry.data_crc32 {
            return Err(CacheError::Corrupt {
                path: dir.join(&entry.data_file),
                reason: "CRC-32 mismatch".into(),
            });
        }
        if let (Some(off), Some(crc), Some(file)) =
            (col.offsets(), entry.offsets_crc32, &entry.offsets_file)
        {
            if crc32fast::hash(off) != crc {
                return Err(CacheError::Corrupt {
                    path: dir.join(file),
                    reason: "offsets CRC-32 mismatch".into(),
                });
            }
        }
        if col.offsets().is_some() {
            for row in 0..table.len() {
                col.check_row(row).map_err(row_corrupt)?;
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
            t.rows().collect::<Result<Vec<_>, _>>().unwrap(),
            table().rows().collect::<Result<Vec<_>, _>>().unwrap()
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
