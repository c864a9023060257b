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
            widen_stream(&mut r, &self.path, &mut |b| w.put(b))?;
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

/// Reads little-endian u16 ids from `r` to its end and hands them to `out`
/// as little-endian u32 ids. Correct for reads of any length: an odd
/// trailing byte of one read is carried over to the next (short reads of
/// odd length happen on NFS and Lustre), and a stream of odd length is an
/// error naming `path`.
fn widen_stream(
    r: &mut dyn Read,
    path: &Path,
    out: &mut dyn FnMut(&[u8]) -> Result<(), CacheError>,
) -> Result<(), CacheError> {
    let mut buf = vec![0u8; 1 << 20];
    // Bytes at the front of `buf` left from the previous read (0 or 1).
    let mut carried = 0usize;
    loop {
        let n = match r.read(&mut buf[carried..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CacheError::io(path, e)),
        };
        if n == 0 {
            break;
        }
        let have = carried + n;
        let whole = have & !1;
        out(&widen_u16_to_u32(&buf[..whole]))?;
        carried = have - whole;
        if carried == 1 {
            buf[0] = buf[whole];
        }
    }
    if carried != 0 {
        return Err(CacheError::Corrupt {
            path: path.to_path_buf(),
            reason: "u16 token data has an odd number of bytes".into(),
        });
    }
    Ok(())
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
/// Files go to a hidden temporary sibling of the target
/// (`.<name>.tmp-<host>-<pid>-<nanos>-<seq>`, locked while the writer
/// lives); [`finish`](Self::finish) fsyncs them, writes the manifest last
/// and swaps the directory into place in one atomic step. Dropped without
/// `finish`, it removes the temporary directory and leaves any existing
/// cache untouched. Token columns are stored as u16 until an id above 65535
/// appears, then rewritten once as u32.
///
/// The target must be absent, an empty directory or an xlm cache: anything
/// else is never deleted ([`CacheError::Occupied`]). Creating a writer
/// removes what crashed writers of the same cache on this host left behind.
pub struct CacheWriter {
    dir: PathBuf,
    tmp: PathBuf,
    old: PathBuf,
    /// Holds an advisory lock on `tmp` while the writer lives, so that other
    /// writers never take it for a crashed writer's leftover.
    _lock: Option<File>,
    /// Set when `tmp` holds something that is not ours (a swap could not be
    /// undone): never delete it.
    keep_tmp: bool,
    rows: u64,
    columns: Option<Vec<ColumnSink>>,
    finished: bool,
}

impl CacheWriter {
    /// Starts a cache that will replace `dir`.
    pub fn create(dir: &Path) -> Result<Self, CacheError> {
        let parent = parent_of(dir);
        fs::create_dir_all(&parent).map_err(|e| CacheError::io(&parent, e))?;
        // Fail before the work, not after it: the same check runs again
        // when the cache is swapped into place.
        check_replaceable(dir)?;
        let name = target_name(dir);
        remove_leftovers(&parent, &name);
        let stamp = format!(
            "{}-{}-{}-{}",
            host_tag(),
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
            NEXT_WRITER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let tmp = parent.join(format!(".{name}{TMP_MARK}{stamp}"));
        fs::create_dir(&tmp).map_err(|e| CacheError::io(&tmp, e))?;
        let lock = lock_dir(&tmp);
        Ok(Self {
            dir: dir.to_path_buf(),
            old: parent.join(format!(".{name}{OLD_MARK}{stamp}")),
            tmp,
            _lock: lock,
            keep_tmp: false,
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
        let result = install(
            &self.tmp,
            &self.dir,
            &self.old,
            Swap::Exchange,
            &mut self.keep_tmp,
        );
        result?;
        self.finished = true;
        sync_dir(&parent_of(&self.dir))?;
        Ok(manifest)
    }
}

impl Drop for CacheWriter {
    fn drop(&mut self) {
        if !self.finished && !self.keep_tmp {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), CacheError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| CacheError::io(dir, e))
}

/// Middle of a writer's temporary directory name: `.<name>.tmp-<stamp>`.
const TMP_MARK: &str = ".tmp-";
/// Middle of the name an old cache is moved to by the two-rename fallback.
const OLD_MARK: &str = ".old-";

/// Writers created by this process (keeps stamps unique across threads).
static NEXT_WRITER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn parent_of(dir: &Path) -> PathBuf {
    match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn target_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cache".into())
}

/// This host's name as writers put it in their temporary directories'
/// names (`.<name>.tmp-<host>-<pid>-...`), reduced to `[A-Za-z0-9._]` so it
/// never holds the `-` that separates the fields of a stamp.
pub fn host_tag() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its length; gethostname NUL-terminates
    // within it or truncates.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = String::from_utf8_lossy(if ok { &buf[..len] } else { b"" })
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// Takes an exclusive advisory lock on directory `dir` and returns the open
/// directory that holds it (`None` where the filesystem has no locks).
fn lock_dir(dir: &Path) -> Option<File> {
    let f = File::open(dir).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return None;
        }
    }
    Some(f)
}

/// True when another open file holds a lock on `dir` (a live writer).
/// Filesystems without locks answer false.
fn is_locked(dir: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let Ok(f) = File::open(dir) else {
            return false;
        };
        // SAFETY: flock on a descriptor we own; closing it releases the lock.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK);
        }
    }
    let _ = dir;
    false
}

/// True unless process `pid` of this host is known to be gone.
fn pid_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return true;
        };
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return true;
        }
        std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Removes what crashed writers of cache `name` left in `parent`: hidden
/// `.<name>.tmp-*` (a cache being built, or an old cache being removed) and
/// `.<name>.old-*` directories whose writer ran on this host, is no longer
/// running and holds no lock on them. Leftovers of other hosts are left (on
/// a shared filesystem their writer may still be running): a writer on
/// that host removes them. Best effort: failures are logged, not returned.
fn remove_leftovers(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let host = host_tag();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let Some(rest) = file_name
            .strip_prefix('.')
            .and_then(|f| f.strip_prefix(name))
        else {
            continue;
        };
        let Some(stamp) = rest
            .strip_prefix(TMP_MARK)
            .or_else(|| rest.strip_prefix(OLD_MARK))
        else {
            continue;
        };
        // <host>-<pid>-<nanos>-<seq>
        let fields: Vec<&str> = stamp.rsplitn(4, '-').collect();
        let [seq, nanos, pid, their_host] = fields.as_slice() else {
            continue;
        };
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !numeric(seq) || !numeric(nanos) || *their_host != host {
            continue;
        }
        let path = entry.path();
        let is_dir = fs::symlink_metadata(&path)
            .map(|m| m.file_type().is_dir())
            .unwrap_or(false);
        if !is_dir || pid_alive(pid) || is_locked(&path) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => log::info!(
                "removed {}, left by a cache writer that did not finish",
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot remove {}, left by a cache writer that did not finish: {e}",
                path.display()
            ),
        }
    }
}

/// What sits at a cache writer's target.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// Nothing.
    Absent,
    /// A directory a writer may replace: an xlm cache (of any version, or
    /// damaged) or an empty directory.
    Replaceable,
    /// Something else, described.
    Foreign(String),
}

/// True when `dir`'s `manifest.json` says it is an xlm cache (any version).
fn has_cache_manifest(dir: &Path) -> bool {
    let Ok(text) = super::read::manifest_bytes(dir) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("format")
                .and_then(|f| f.as_str())
                .map(|f| f == FORMAT_NAME)
        })
        .unwrap_or(false)
}

fn classify(dir: &Path) -> Result<Target, CacheError> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Absent),
        Err(e) => return Err(CacheError::io(dir, e)),
    };
    let t = meta.file_type();
    if t.is_symlink() {
        return Ok(Target::Foreign(
            "is a symbolic link, not an xlm cache (a cache is replaced by renaming directories, which would replace the link)".into(),
        ));
    }
    if !t.is_dir() {
        return Ok(Target::Foreign("is a file, not an xlm cache".into()));
    }
    let empty = fs::read_dir(dir)
        .map_err(|e| CacheError::io(dir, e))?
        .next()
        .is_none();
    if empty || has_cache_manifest(dir) {
        Ok(Target::Replaceable)
    } else {
        Ok(Target::Foreign(format!(
            "is a directory that is not an xlm cache (it has no {MANIFEST_FILE} of format `{FORMAT_NAME}`)"
        )))
    }
}

/// Errors unless `dir` is absent or replaceable.
fn check_replaceable(dir: &Path) -> Result<(), CacheError> {
    match classify(dir)? {
        Target::Foreign(reason) => Err(CacheError::Occupied {
            path: dir.to_path_buf(),
            reason,
        }),
        Target::Absent | Target::Replaceable => Ok(()),
    }
}

/// How [`install`] puts a finished directory in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swap {
    /// One `renameat2(RENAME_EXCHANGE)`, falling back to `Renames` where
    /// the filesystem or kernel cannot exchange.
    Exchange,
    /// Move the old cache aside, move the new one in, remove the old.
    Renames,
}

/// Atomically exchanges directories `a` and `b` (both must exist).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two NUL-terminated paths that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

/// True for the errors of a kernel or filesystem that cannot exchange.
fn cannot_exchange(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EPERM)
    )
}

fn is_not_empty(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST))
}

/// Removes a replaced cache; a failure only leaves a hidden directory that
/// a later writer removes, so it is logged, not returned.
fn remove_replaced(path: &Path) {
    match fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("cannot remove the replaced cache {}: {e}", path.display()),
    }
}

/// Puts the finished directory `tmp` at `dir`.
///
/// With [`Swap::Exchange`], `dir` changes from the old cache to the new one
/// in one step, so a reader opening `dir` always finds a complete cache;
/// the old one (now at `tmp`) is then removed. Where the filesystem cannot
/// exchange (`EINVAL`, `ENOSYS`, `EOPNOTSUPP`, `EPERM`; or not Linux) it
/// falls back to [`Swap::Renames`], which leaves `dir` briefly absent.
///
/// Whatever is replaced is checked to be an xlm cache or an empty directory
/// (before, and again after the swap, which is undone if it is not). When
/// several writers race for one `dir` (local rank 0 of every node on a
/// shared filesystem), the last swap wins and every writer succeeds.
///
/// Sets `foreign_at_tmp` if it had to leave something not ours at `tmp`.
fn install(
    tmp: &Path,
    dir: &Path,
    old: &Path,
    swap: Swap,
    foreign_at_tmp: &mut bool,
) -> Result<(), CacheError> {
    if swap == Swap::Renames {
        return install_by_renames(tmp, dir, old);
    }
    for _ in 0..16 {
        check_replaceable(dir)?;
        match exchange(tmp, dir) {
            Ok(()) => {
                // `tmp` now holds what was at `dir`.
                let replaced = classify(tmp);
                if !matches!(replaced, Ok(Target::Replaceable)) {
                    let reason = match replaced {
                        Ok(Target::Foreign(reason)) => reason,
                        Ok(_) => "vanished while being replaced".into(),
                        Err(e) => format!("cannot be inspected ({e})"),
                    };
                    if let Err(e) = exchange(tmp, dir) {
                        *foreign_at_tmp = true;
                        return Err(CacheError::Occupied {
                            path: dir.to_path_buf(),
                            reason: format!(
                                "{reason}; it was swapped to {} and could not be swapped back ({e}): move it back by hand",
                                tmp.display()
                            ),
                        });
                    }
                    return Err(CacheError::Occupied {
                        path: dir.to_path_buf(),
                        reason,
                    });
                }
                remove_replaced(tmp);
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && tmp.exists() => {
                // Nothing at `dir`: move in. If another writer got there
                // first, exchange with its cache on the next turn.
                match fs::rename(tmp, dir) {
                    Ok(()) => return Ok(()),
                    Err(e) if is_not_empty(&e) => continue,
                    Err(e) => return Err(CacheError::io(dir, e)),
                }
            }
            Err(e) if cannot_exchange(&e) => {
                log::debug!(
                    "{}: cannot exchange directories atomically ({e}); replacing with two renames",
                    dir.display()
                );
                return install_by_renames(tmp, dir, old);
            }
            Err(e) => return Err(CacheError::io(dir, e)),
        }
    }
    Err(CacheError::io(
        dir,
        std::io::Error::other(
            "other writers kept replacing the directory; giving up after 16 tries",
        ),
    ))
}

/// The fallback of [`install`]: `dir` -> `old`, `tmp` -> `dir`, remove `old`.
fn install_by_renames(tmp: &Path, dir: &Path, old: &Path) -> Result<(), CacheError> {
    check_replaceable(dir)?;
    let had_old = match fs::rename(dir, old) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(CacheError::io(dir, e)),
    };
    if had_old {
        if let Target::Foreign(reason) = classify(old)? {
            fs::rename(old, dir).map_err(|e| CacheError::io(dir, e))?;
            return Err(CacheError::Occupied {
                path: dir.to_path_buf(),
                reason,
            });
        }
    }
    if let Err(e) = fs::rename(tmp, dir) {
        // Another writer's cache got there between the two renames: keep it.
        if super::is_cache(dir) {
            remove_replaced(tmp);
        } else {
            if had_old {
                let _ = fs::rename(old, dir);
            }
            return Err(CacheError::io(dir, e));
        }
    }
    if had_old {
        remove_replaced(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Example, Value};

    fn rows(t: &Table) -> Vec<Example> {
        t.rows().collect::<Result<_, _>>().unwrap()
    }

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
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows(&t), whole);
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
            rows(&crate::cache::open(&dir).unwrap()),
            rows(&chunk(0..6, false))
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

    /// Returns 1, 3, 5, ... bytes per read (short reads of odd length, as
    /// NFS and Lustre give).
    struct OddReads<'a> {
        data: &'a [u8],
        next: usize,
    }

    impl Read for OddReads<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.next.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            self.next += 2;
            Ok(n)
        }
    }

    #[test]
    fn widening_is_exact_for_odd_length_short_reads() {
        let ids: Vec<u16> = (0..5000u32).map(|i| (i * 7919 % 65536) as u16).collect();
        let bytes: Vec<u8> = ids.iter().flat_map(|i| i.to_le_bytes()).collect();
        let want: Vec<u8> = ids.iter().flat_map(|&i| (i as u32).to_le_bytes()).collect();
        // Widening each read on its own (what a reader that ignores short
        // reads does) shifts every id after the first odd read.
        let mut naive = Vec::new();
        let mut r = OddReads {
            data: &bytes,
            next: 1,
        };
        let mut buf = [0u8; 4096];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            naive.extend(widen_u16_to_u32(&buf[..n]));
        }
        assert_ne!(naive, want);
        let mut got = Vec::new();
        let mut r = OddReads {
            data: &bytes,
            next: 1,
        };
        widen_stream(&mut r, Path::new("x"), &mut |b| {
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, want);
        // An odd total is an error naming the file, not a dropped byte.
        let mut r = OddReads {
            data: &bytes[..bytes.len() - 1],
            next: 1,
        };
        let e = widen_stream(&mut r, Path::new("/c/col1.data"), &mut |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/c/col1.data") && e.contains("odd"), "{e}");
    }

    #[test]
    fn the_two_rename_fallback_replaces_only_caches() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        let build = |rows: std::ops::Range<i64>, name: &str| {
            let tmp = d.path().join(name);
            write(&chunk(rows, false), &tmp).unwrap();
            tmp
        };
        let old = d.path().join(".c.old-x");
        // Nothing there, then a cache there.
        let mut foreign = false;
        install(&build(0..3, "a"), &dir, &old, Swap::Renames, &mut foreign).unwrap();
        assert_eq!(crate::cache::open(&dir).unwrap().len(), 3);
        install(&build(0..5, "b"), &dir, &old, Swap::Renames, &mut foreign).unwrap();
        assert_eq!(crate::cache::open(&dir).unwrap().len(), 5);
        assert!(!old.exists());
        // Not a cache: left in place, the new one not installed.
        let mine = d.path().join("mine");
        fs::create_dir(&mine).unwrap();
        fs::write(mine.join("notes"), "x").unwrap();
        let tmp = build(0..2, "t");
        for swap in [Swap::Renames, Swap::Exchange] {
            let e = install(&tmp, &mine, &old, swap, &mut foreign).unwrap_err();
            assert!(matches!(e, CacheError::Occupied { .. }), "{e}");
            assert!(mine.join("notes").exists() && tmp.join(MANIFEST_FILE).exists());
        }
        assert!(!foreign);
    }

    #[test]
    fn a_crashed_writers_temporary_directory_is_removed_next_time() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("c");
        let mut w = CacheWriter::create(&dir).unwrap();
        w.append(&chunk(0..3, false)).unwrap();
        // What a crash would leave: the writer's directory, but no writer.
        let tmp = w.tmp.clone();
        w._lock = None;
        std::mem::forget(w);
        assert!(tmp.exists());
        // Our own pid is alive: not removed while this process runs...
        write(&chunk(0..2, false), &dir).unwrap();
        assert!(tmp.exists());
        // ...but it is once the name says a finished process made it.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let name = tmp.file_name().unwrap().to_str().unwrap();
        let fields: Vec<&str> = name.rsplitn(4, '-').collect();
        let renamed = d
            .path()
            .join(format!("{}-{dead}-{}-{}", fields[3], fields[1], fields[0]));
        fs::rename(&tmp, &renamed).unwrap();
        write(&chunk(0..2, false), &dir).unwrap();
        assert!(!renamed.exists());
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
