//! Split instructions applied to any source, in one place.
//!
//! Memory stays bounded by the chunk size, whatever the split's size:
//!
//! - a part whose bounds need the split's row count `n` (a negative or a
//!   percent bound: `train[:-100000]`, `train[:10%]`) asks the source for it
//!   first ([`Source::num_rows`]: a table's length in memory, a line/record
//!   count or parquet metadata for files, no parsing into rows), then
//!   streams the split and keeps only the rows of the range;
//! - a part with plain non-negative bounds (`train[:1000]`, `train[10:]`)
//!   needs no count: it streams, drops rows before `from` and stops reading
//!   once it has reached `to`.
//!
//! Every part is resolved before any row is handed on, so a bad bound
//! (`from > to` once resolved) fails before anything is written.

use super::{ChunkSink, FullName, Source, SourceError, Stopped};
use crate::data::{Table, TableBuilder};
use std::collections::BTreeMap;

/// Rows per chunk when [`load_selected`] streams a sliced split.
const CHUNK_ROWS: usize = 4096;

/// Streams the rows `name` selects, in order, as tables of at most
/// `chunk_rows` rows: the whole split, or with a split instruction
/// (`train[:-10]`, `train[:5]+test[-5:]`) the rows it selects. An
/// instruction that selects no row is [`SourceError::EmptySlice`].
pub fn load_selected_chunks(
    source: &dyn Source,
    name: &FullName,
    chunk_rows: usize,
    sink: &mut ChunkSink<'_>,
) -> Result<(), SourceError> {
    let Some(instruction) = &name.instruction else {
        return source.load_chunks(name, chunk_rows, sink);
    };
    let fail = |reason: String| SourceError::Slice {
        name: name.to_string(),
        reason,
    };
    // Resolve every part first (counting each split once).
    let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ranges = Vec::with_capacity(instruction.parts().len());
    for part in instruction.parts() {
        let whole = name.with_split(&part.split);
        if part.needs_len() {
            let n = match sizes.get(part.split.as_str()) {
                Some(&n) => n,
                None => {
                    let n = source.num_rows(&whole)?;
                    sizes.insert(&part.split, n);
                    n
                }
            };
            let r = part.absolute(n).map_err(fail)?;
            ranges.push((whole, r.start, Some(r.end)));
        } else {
            let row = |b: i64| usize::try_from(b).unwrap_or(usize::MAX);
            ranges.push((whole, part.from.map_or(0, row), part.to.map(row)));
        }
    }
    let mut selected = 0;
    let mut detail = Vec::new();
    for (part, (whole, start, end)) in instruction.parts().iter().zip(ranges) {
        let (taken, described) = if end == Some(start) {
            let n = sizes.get(part.split.as_str()).copied();
            let of = n.map(|n| format!(" of {n}")).unwrap_or_default();
            (0, format!("rows {start}..{start}{of}"))
        } else {
            let (taken, seen) = stream_range(source, &whole, start, end, chunk_rows, sink)?;
            let stop = end.map_or(seen, |e| e.min(seen));
            (taken, format!("rows {}..{stop} of {seen}", start.min(seen)))
        };
        selected += taken;
        detail.push(format!("`{}` is {described}", part.as_str()));
    }
    if selected == 0 {
        return Err(SourceError::EmptySlice {
            name: name.to_string(),
            instruction: instruction.to_string(),
            detail: detail.join("; "),
        });
    }
    Ok(())
}

/// Every row `name` selects, as one table (see [`load_selected_chunks`]).
pub fn load_selected(source: &dyn Source, name: &FullName) -> Result<Table, SourceError> {
    if name.instruction.is_none() {
        return source.load(name);
    }
    let mut builder = TableBuilder::new();
    let mut failure = None;
    let streamed = load_selected_chunks(source, name, CHUNK_ROWS, &mut |t: Table| {
        for e in t.rows() {
            if let Err(err) = e.and_then(|e| builder.push(&e)) {
                failure = Some(err);
                return Err(Stopped);
            }
        }
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    streamed?;
    Ok(builder.finish())
}

/// Streams rows `start..end` (`None`: to the end) of the whole split `whole`
/// to `sink`, stopping the source once `end` is reached. Returns the rows
/// handed on and the rows the source produced (the split's size when the
/// stream was not stopped early).
fn stream_range(
    source: &dyn Source,
    whole: &FullName,
    start: usize,
    end: Option<usize>,
    chunk_rows: usize,
    sink: &mut ChunkSink<'_>,
) -> Result<(usize, usize), SourceError> {
    let (mut seen, mut taken) = (0usize, 0usize);
    let mut reached_end = false;
    let mut failure: Option<SourceError> = None;
    let streamed = source.load_chunks(whole, chunk_rows, &mut |t: Table| {
        let len = t.len();
        let lo = start.clamp(seen, seen + len) - seen;
        let hi = end.map_or(seen + len, |e| e.clamp(seen, seen + len)) - seen;
        seen += len;
        if lo < hi {
            let piece = if lo == 0 && hi == len {
                t
            } else {
                t.slice(lo..hi).map_err(|e| {
                    failure = Some(e.into());
                    Stopped
                })?
            };
            taken += hi - lo;
            sink(piece)?;
        }
        if end.is_some_and(|e| seen >= e) {
            reached_end = true;
            return Err(Stopped);
        }
        Ok(())
    });
    if let Some(e) = failure {
        return Err(e);
    }
    match streamed {
        Err(SourceError::Stopped) if reached_end => {}
        other => other?,
    }
    Ok((taken, seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{synthetic_table, MemoryRegistry};

    /// A source that counts how many rows it produced, to check early stops.
    struct Counting {
        inner: MemoryRegistry,
        produced: std::sync::atomic::AtomicUsize,
        counted: std::sync::atomic::AtomicUsize,
    }

    impl Source for Counting {
        fn load(&self, name: &FullName) -> Result<Table, SourceError> {
            self.inner.load(name)
        }
        fn load_chunks(
            &self,
            name: &FullName,
            chunk_rows: usize,
            sink: &mut ChunkSink<'_>,
        ) -> Result<(), SourceError> {
            use std::sync::atomic::Ordering;
            super::super::chunk_table(&self.load(name)?, chunk_rows, &mut |t| {
                self.produced.fetch_add(t.len(), Ordering::SeqCst);
                sink(t)
            })
        }
        fn num_rows(&self, name: &FullName) -> Result<usize, SourceError> {
            self.counted
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.load(name)?.len())
        }
        fn describe(&self) -> String {
            "counting".into()
        }
    }

    fn source() -> Counting {
        let inner = MemoryRegistry::new();
        inner.insert("m/d/train", synthetic_table((0..100).map(|i| (i, 3))));
        inner.insert("m/d/test", synthetic_table((500..510).map(|i| (i, 3))));
        Counting {
            inner,
            produced: Default::default(),
            counted: Default::default(),
        }
    }

    fn ids(s: &dyn Source, name: &str, chunk_rows: usize) -> Result<Vec<i64>, SourceError> {
        let mut out = Vec::new();
        load_selected_chunks(s, &FullName::parse(name).unwrap(), chunk_rows, &mut |t| {
            assert!(t.len() <= chunk_rows && !t.is_empty());
            out.extend(t.rows().map(|e| e.unwrap().int("id").unwrap()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn slices_across_chunk_boundaries_for_any_chunk_size() {
        for chunk in [1, 3, 7, 64, 1000] {
            let s = source();
            assert_eq!(
                ids(&s, "m/d/train[5:12]", chunk).unwrap(),
                (5..12).collect::<Vec<_>>()
            );
            assert_eq!(ids(&s, "m/d/train[-3:]", chunk).unwrap(), [97, 98, 99]);
            assert_eq!(
                ids(&s, "m/d/train[:-95]", chunk).unwrap(),
                (0..5).collect::<Vec<_>>()
            );
            assert_eq!(ids(&s, "m/d/train[10%:12%]", chunk).unwrap(), [10, 11]);
            assert_eq!(
                ids(&s, "m/d/train[:2]+test[-2:]+train[98:]", chunk).unwrap(),
                [0, 1, 508, 509, 98, 99]
            );
            assert_eq!(ids(&s, "m/d/train[:]", chunk).unwrap().len(), 100);
        }
    }

    #[test]
    fn plain_bounds_stop_early_and_skip_the_count() {
        use std::sync::atomic::Ordering;
        let s = source();
        assert_eq!(ids(&s, "m/d/train[:10]", 4).unwrap().len(), 10);
        assert_eq!(
            s.produced.load(Ordering::SeqCst),
            12,
            "stops after the chunk with row 9"
        );
        assert_eq!(s.counted.load(Ordering::SeqCst), 0);
        let s = source();
        ids(&s, "m/d/train[-10:]+train[:-90]", 50).unwrap();
        assert_eq!(s.counted.load(Ordering::SeqCst), 1, "one count per split");
    }

    #[test]
    fn empty_selections_and_reversed_ranges_are_errors() {
        let s = source();
        for (name, what) in [
            ("m/d/train[100:]", "`train[100:]` is rows 100..100 of 100"),
            (
                "m/d/train[200:300]",
                "`train[200:300]` is rows 100..100 of 100",
            ),
            ("m/d/train[:-100]", "`train[:-100]` is rows 0..0 of 100"),
            ("m/d/train[5:5]+test[:0]", "`train[5:5]` is rows 5..5"),
            ("m/d/train[:0%]", "rows 0..0 of 100"),
        ] {
            let e = ids(&s, name, 8).unwrap_err().to_string();
            let instruction = name.trim_start_matches("m/d/");
            assert!(
                e.contains(&format!(
                    "split instruction `{instruction}` selects no rows"
                )) && e.contains(name)
                    && e.contains(what),
                "{e}"
            );
        }
        // One empty part among non-empty ones is fine (as in HF).
        assert_eq!(ids(&s, "m/d/train[5:5]+test[:1]", 8).unwrap(), [500]);
        let e = ids(&s, "m/d/test[-2:3]", 8).unwrap_err().to_string();
        assert!(
            e.contains("full_name `m/d/test[-2:3]`") && e.contains("8..3"),
            "{e}"
        );
    }

    #[test]
    fn load_selected_collects_and_passes_whole_splits_through() {
        let s = source();
        let t = load_selected(&s, &FullName::parse("m/d/test[2:4]").unwrap()).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.row(0).unwrap().int("id").unwrap(), 502);
        let t = load_selected(&s, &FullName::parse("m/d/test").unwrap()).unwrap();
        assert_eq!(t.len(), 10);
    }
}
