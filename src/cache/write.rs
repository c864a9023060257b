use super::{CacheError, ColumnEntry, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE};
use crate::data::Table;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `table` as a cache at `dir`, atomically replacing any cache there.
///
/// The files are written into a hidden temporary sibling of `dir`, each
/// fsynced, the manifest last; then the temporary directory is renamed to
/// `dir`. An existing `dir` is first moved aside and removed only after the
/// new cache is in place.
pub fn write(table: &Table, dir: &Path) -> Result<Manifest, CacheError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| CacheError::io(parent, e))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cache".into());
    let stamp = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    let tmp = parent.join(format!(".{name}.tmp-{stamp}"));
    let result = write_into(table, &tmp).and_then(|m| {
        swap_into_place(&tmp, dir, &parent.join(format!(".{name}.old-{stamp}")))?;
        sync_dir(parent)?;
        Ok(m)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_into(table: &Table, tmp: &Path) -> Result<Manifest, CacheError> {
    fs::create_dir(tmp).map_err(|e| CacheError::io(tmp, e))?;
    let mut columns = Vec::new();
    for (i, col) in table.columns().iter().enumerate() {
        let data_file = format!("col{i}.data");
        let data_crc32 = write_file(&tmp.join(&data_file), col.data())?;
        let (offsets_file, offsets_bytes, offsets_crc32) = match col.offsets() {
            Some(off) => {
                let f = format!("col{i}.offsets");
                let crc = write_file(&tmp.join(&f), off)?;
                (Some(f), Some(off.len() as u64), Some(crc))
            }
            None => (None, None, None),
        };
        columns.push(ColumnEntry {
            schema: col.schema().clone(),
            data_file,
            data_bytes: col.data().len() as u64,
            data_crc32,
            offsets_file,
            offsets_bytes,
            offsets_crc32,
        });
    }
    let manifest = Manifest {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        rows: table.len() as u64,
        columns,
        created_by: format!("xlm {}", env!("CARGO_PKG_VERSION")),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write_file(&tmp.join(MANIFEST_FILE), &json)?;
    sync_dir(tmp)?;
    Ok(manifest)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<u32, CacheError> {
    let mut f = File::create(path).map_err(|e| CacheError::io(path, e))?;
    f.write_all(bytes).map_err(|e| CacheError::io(path, e))?;
    f.sync_all().map_err(|e| CacheError::io(path, e))?;
    Ok(crc32fast::hash(bytes))
}

fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| CacheError::io(dir, e))
}

fn swap_into_place(tmp: &Path, dir: &Path, old: &PathBuf) -> Result<(), CacheError> {
    let had_old = dir.exists();
    if had_old {
        fs::rename(dir, old).map_err(|e| CacheError::io(dir, e))?;
    }
    fs::rename(tmp, dir).map_err(|e| CacheError::io(dir, e))?;
    if had_old {
        fs::remove_dir_all(old).map_err(|e| CacheError::io(old, e))?;
    }
    Ok(())
}
