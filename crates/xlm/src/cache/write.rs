use super::{CacheError, ColumnEntry, Manifest, FORMAT_NAME, FORMAT_VERSION, MANIFEST_FILE};
use crate::data::{last_u64, read_u64, widen_u16_to_u32, ColumnKind, ColumnSchema, Table};
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Writes `table` as a cache at `dir`, atomically replacing any cache there.
pub fn write(table: &Table, dir: &Path) -> Result<Manifest, CacheError> {
    let mut w = CacheWriter::create(dir)?;
    w.append(table)?;
    w.finish()
}

/// One output file with its running size and CRC-32.
struct Sink {
    path: PathBuf,
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    bytes: u64,
}

impl Sink {
    fn create(path: PathBuf) -> Result<Self, CacheError> {
        let f = File::create(&path).map_err(|e| CacheError::io(&path, e))?;
        Ok(Self {
            out: BufWriter::with_capacity(1 << 20, f),
            path,
            crc: crc32fast::Hasher::new(),
            bytes: 0,
        })
    }

    fn put(&mut self, b: &[u8]) -> Result<(), CacheError> {
        self.out
            .write_all(b)
            .map_err(|e| CacheError::io(&self.path, e))?;
        self.crc.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    fn close(self) -> Result<(String, u64, u32), CacheError> {
        let f = self
            .out
            .into_inner()
            .map_err(|e| CacheError::io(&self.path, e.into_error()))?;
        f.sync_all().map_err(|e| CacheError::io(&self.path, e))?;
        let name = self
            .path
            .file_name()
            .expect("file")
            .to_string_lossy()
            .into_owned();
        Ok((name, self.bytes, self.crc.finalize()))
    }

    /// Rewrites the u16 ids written so far as u32 (a token column met an id
    /// above 65535 after its first chunks).
    fn widen_u16(&mut self) -> Result<(), CacheError> {
        self.out
            .flush()
            .map_err(|e| CacheError::io(&self.path, e))?;
        let wide = self.path.with_extension("wide");
        {
            let mut r = BufReader::with_capacity(
                1 << 20,
                File::open(&self.path).map_err(|e| CacheError::io(&self.path, e))?,
            );
            let mut w = Sink::create(wide.clone())?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = r
                    .read(&mut buf)
                    .map_err(|e| CacheError::io(&self.path, e))?;
                if n == 0 {
                    break;
                }
                let out = widen_u16_to_u32(&buf[..n]);
                w.put(&out)?;
            }
            w.out.flush().map_err(|e| CacheError::io(&wide, e))?;
            self.crc = w.crc;
            self.bytes = w.bytes;
        }
        fs::rename(&wide, &self.path).map_err(|e| CacheError::io(&self.path, e))?;
        let f = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(|e| CacheError::io(&self.path, e))?;
        self.out = BufWriter::with_capacity(1 << 20, f);
        Ok(())
    }
}

struct ColumnSink {
    schema: ColumnSchema,
    data: Sink,
    offsets: Option<Sink>,
    /// Elements (ids, or bytes of text) written so far: the next row's offset.
    elements: u64,
}

/// Builds a cache from tables appended in order (e.g. chunks of a streamed
/// source), so a prepare never needs the whole dataset in memory.
///
/// Files go to a hidden temporary sibling of the target; [`finish`](Self::finish)
/// fsyncs them, writes the manifest last and renames the directory into
/// place. Dropped without `finish`, it removes the temporary directory and
/// leaves any existing cache untouched. Token columns are stored as u16
/// until an id above 65535 appears, then rewritten once as u32.
pub struct CacheWriter {
    dir: PathBuf,
    tmp: PathBuf,
    old: PathBuf,
    rows: u64,
    columns: Option<Vec<ColumnSink>>,
    finished: bool,
}

impl CacheWriter {
    /// Starts a cache that will replace `dir`.
    pub fn create(dir: &Path) -> Result<Self, CacheError> {
        let parent = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
        fs::create_dir_all(&parent).map_err(|e| CacheError::io(&parent, e))?;
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
        fs::create_dir(&tmp).map_err(|e| CacheError::io(&tmp, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            old: parent.join(format!(".{name}.old-{stamp}")),
            tmp,
            rows: 0,
            columns: None,
            finished: false,
        })
    }

    /// Rows appended so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends the rows of `chunk`; every chunk must have the first one's columns.
    pub fn append(&mut self, chunk: &Table) -> Result<(), CacheError> {
        if chunk.columns().is_empty() && chunk.is_empty() {
            return Ok(());
        }
        if self.columns.is_none() {
            let mut cols = Vec::new();
            for (i, c) in chunk.columns().iter().enumerate() {
                let has_offsets = c.offsets().is_some();
                cols.push(ColumnSink {
                    schema: c.schema().clone(),
                    data: Sink::create(self.tmp.join(format!("col{i}.data")))?,
                    offsets: if has_offsets {
                        let mut s = Sink::create(self.tmp.join(format!("col{i}.offsets")))?;
                        s.put(&0u64.to_le_bytes())?;
                        Some(s)
                    } else {
                        None
                    },
                    elements: 0,
                });
            }
            self.columns = Some(cols);
        }
        let cols = self.columns.as_mut().expect("set above");
        let same = cols.len() == chunk.columns().len()
            && cols
                .iter()
                .zip(chunk.columns())
                .all(|(a, b)| a.schema.name == b.schema().name && a.schema.kind == b.schema().kind);
        if !same {
            let names = |v: Vec<String>| v.join(", ");
            return Err(CacheError::Corrupt {
                path: self.tmp.clone(),
                reason: format!(
                    "rows {}.. have columns [{}] but the cache has [{}]; every row needs the same columns",
                    self.rows,
                    names(chunk.schema().into_iter().map(|s| s.name).collect()),
                    names(cols.iter().map(|c| c.schema.name.clone()).collect())
                ),
            });
        }
        for (sink, col) in cols.iter_mut().zip(chunk.columns()) {
            let w_in = col.schema().width;
            if sink.schema.kind == ColumnKind::Tokens && w_in > sink.schema.width {
                sink.data.widen_u16()?;
                sink.schema.width = w_in;
            }
            if sink.schema.kind == ColumnKind::Tokens && w_in < sink.schema.width {
                let wide = widen_u16_to_u32(col.data());
                sink.data.put(&wide)?;
            } else {
                sink.data.put(col.data())?;
            }
            if let (Some(out), Some(off)) = (sink.offsets.as_mut(), col.offsets()) {
                let base = sink.elements;
                let rebased: Vec<u8> = off[8..]
                    .chunks_exact(8)
                    .flat_map(|c| (read_u64(c, 0) + base).to_le_bytes())
                    .collect();
                out.put(&rebased)?;
                sink.elements = base + last_u64(off);
            }
        }
        self.rows += chunk.len() as u64;
        Ok(())
    }

    /// Syncs the files, writes the manifest, and renames the cache into place.
    pub fn finish(mut self) -> Result<Manifest, CacheError> {
        let mut columns = Vec::new();
        for c in self.columns.take().unwrap_or_default() {
            let (data_file, data_bytes, data_crc32) = c.data.close()?;
            let (offsets_file, offsets_bytes, offsets_crc32) = match c.offsets {
                Some(o) => {
                    let (f, b, crc) = o.close()?;
                    (Some(f), Some(b), Some(crc))
                }
                None => (None, None, None),
            };
            columns.push(ColumnEntry {
                schema: c.schema,
                data_file,
                data_bytes,
                data_crc32,
                offsets_file,
                offsets_bytes,
                offsets_crc32,
            });
        }
        let manifest = Manifest {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            rows: self.rows,
            columns,
            created_by: format!("xlm {}", env!("CARGO_PKG_VERSION")),
        };
        let mut m = Sink::create(self.tmp.join(MANIFEST_FILE))?;
        m.put(&serde_json::to_vec_pretty(&manifest).expect("manifest serialises"))?;
        m.close()?;
        sync_dir(&self.tmp)?;
        swap_into_place(&self.tmp, &self.dir, &self.old)?;
        sync_dir(self.dir.parent().unwrap_or(Path::new(".")))?;
        self.finished = true;
        Ok(manifest)
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if !self.finished {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| CacheError::io(dir, e))
}

/// Moves the finished temporary directory to `dir`. When several writers
/// race for the same `dir` (e.g. local rank 0 of every node on a shared
/// filesystem), the last rename wins; a writer that finds `dir` taken by a
/// complete cache between its own two renames leaves that one in place.
fn swap_into_place(tmp: &Path, dir: &Path, old: &Path) -> Result<(), CacheError> {
    let had_old = match fs::rename(dir, old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(CacheError::io(dir, e)),
    };
    if let Err(e) = fs::rename(tmp, dir) {
        if super::is_cache(dir) {
            fs::remove_dir_all(tmp).map_err(|e| CacheError::io(tmp, e))?;
        } else {
            return Err(CacheError::io(dir, e));
        }
    }
    if had_old {
        fs::remove_dir_all(old).map_err(|e| CacheError::io(old, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Example, Value};

    fn chunk(ids: std::ops::Range<i64>, big: bool) -> Table {
        Table::from_examples(ids.map(|i| {
            Example::new()
                .with("id", Value::Int(i))
                .with(
                    "token_ids",
                    Value::List(
                        (0..i % 4)
                            .map(|t| if big { 70_000 + t } else { t })
                            .collect(),
                    ),
                )
                .with("text", Value::Text(format!("r{i}")))
        }))
        .unwrap()
    }

    #[test]
    fn appended_chunks_equal_one_table_and_widen_once() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CacheWriter::create(&d.path().join("c")).unwrap();
        w.append(&chunk(0..5, false)).unwrap();
        w.append(&Table::default()).unwrap();
        w.append(&chunk(5..9, true)).unwrap();
        w.append(&chunk(9..12, false)).unwrap();
        w.finish().unwrap();
        let t = crate::cache::open(&d.path().join("c")).unwrap();
        let whole: Vec<Example> = chunk(0..5, false)
            .rows()
            .chain(chunk(5..9, true).rows())
            .chain(chunk(9..12, false).rows())
            .collect();
        assert_eq!(t.rows().collect::<Vec<_>>(), whole);
        assert_eq!(t.column("token_ids").unwrap().schema().width, 4);
        crate::cache::verify(&d.path().join("c")).unwrap();
    }

    #[test]
    fn concurrent_writers_of_one_cache_all_succeed() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    for _ in 0..5 {
                        write(&chunk(0..6, false), &dir).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(
            crate::cache::open(&dir).unwrap().rows().collect::<Vec<_>>(),
            chunk(0..6, false).rows().collect::<Vec<_>>()
        );
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "no temporary directories left: {left:?}");
    }

    #[test]
    fn mismatched_chunks_and_abandoned_writers_leave_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut w = CacheWriter::create(&d.path().join("c")).unwrap();
        w.append(&chunk(0..3, false)).unwrap();
        let other = Table::from_examples(vec![Example::new().with("x", Value::Int(1))]).unwrap();
        assert!(w
            .append(&other)
            .unwrap_err()
            .to_string()
            .contains("rows 3.."));
        drop(w);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
