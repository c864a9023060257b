use std::ops::Deref;
use std::sync::Arc;

/// An immutable byte buffer, either owned or a shared memory map.
///
/// Cloning is O(1): both variants are reference counted.
#[derive(Clone)]
pub enum Bytes {
    /// Bytes held in memory (tables built by sources and preprocessing).
    Owned(Arc<Vec<u8>>),
    /// Bytes of a memory-mapped cache file; the OS pages them in on demand.
    Mapped(Arc<memmap2::Mmap>),
}

impl Bytes {
    /// Wraps an owned buffer.
    pub fn owned(v: Vec<u8>) -> Self {
        Bytes::Owned(Arc::new(v))
    }
}

impl Bytes {
    /// Drops this process's mapping of the pages (memory-mapped bytes only),
    /// so resident memory stays bounded while a large cache is streamed; the
    /// data stays in the OS page cache and is faulted back in when read.
    pub fn release_pages(&self) {
        if let Bytes::Mapped(m) = self {
            // SAFETY: the mapping is a read-only, shared mapping of a file
            // that is never modified (caches are immutable), so MADV_DONTNEED
            // only drops page-table entries; later reads see the same bytes.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v.as_slice(),
            Bytes::Mapped(m) => m,
        }
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Bytes::Owned(_) => "owned",
            Bytes::Mapped(_) => "mapped",
        };
        write!(f, "Bytes({kind}, {} bytes)", self.len())
    }
}
