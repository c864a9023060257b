use crate::data::{read_u64 as offset_at, Bytes, Column, DataError};
use serde::Serialize;
use std::ops::Range;

/// The packing layout rule as an explicit id for resume fingerprints: each
/// shard's rows, in row order, concatenated and cut into blocks; a change to
/// the rule must change this string.
pub const PACK_ALGORITHM: &str = "shard-rows-in-order-cut-into-blocks-v1";

/// How rows are packed into fixed-size blocks.
///
/// Each shard's rows, in order, form one token stream: per row
/// `[BOS]? tokens [EOS]?`. The stream is cut into `block_size` blocks. The
/// last partial block of a shard is dropped (`drop_last`) or padded with
/// `pad_id` (attention 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackSpec {
    /// Function name, for errors.
    pub function: String,
    /// The token column to pack; `None`: `input_ids` if the data has it, else `token_ids`.
    pub column: Option<String>,
    /// Tokens per block.
    pub block_size: usize,
    /// Id put before each row.
    pub bos: Option<u32>,
    /// Id put after each row.
    pub eos: Option<u32>,
    /// Drop (true) or pad (false) the last partial block of a shard.
    pub drop_last: bool,
    /// Padding id for a padded last block.
    pub pad_id: u32,
    /// Emit `source_ids`: for each token, the `id` of the row it came from (-1 for padding and markers
    /// of rows without an id column).
    pub source_ids: bool,
}

impl PackSpec {
    /// Stream tokens one row of `len` ids takes.
    pub fn row_span(&self, len: usize) -> usize {
        len + self.bos.is_some() as usize + self.eos.is_some() as usize
    }
}

/// One piece of a packed block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The BOS marker of the row at this position of the row set.
    Bos(usize),
    /// Tokens `range` of the row at this position.
    Tokens(usize, Range<usize>),
    /// The EOS marker of the row at this position.
    Eos(usize),
    /// This many padding tokens (only in a padded last block of a shard).
    Pad(usize),
}

/// Stream offsets where each row of a shard starts, plus the total at the
/// end: 4 bytes per row while the shard's stream fits in u32.
#[derive(Debug, Clone)]
enum Starts {
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
    /// Read from the token column's own row offsets (rows `first..first+rows`
    /// of the table, no filter): row i starts at
    /// `offsets[first+i] - offsets[first] + markers * i`. Costs no memory.
    /// The offsets sampled into `coarse` are checked when the index is built;
    /// the others when a block reads them.
    Derived {
        /// The token column, for errors naming its file and row.
        column: Column,
        offsets: Bytes,
        first: usize,
        rows: usize,
        markers: u64,
        /// Every `COARSE`-th start, so a lookup reads a few offsets, not log2(rows).
        coarse: Vec<u64>,
    },
}

/// Rows per entry of a derived index's coarse level (8 bytes per 64 rows).
const COARSE: usize = 64;

impl Starts {
    fn from_spans(spans: impl ExactSizeIterator<Item = u64> + Clone) -> Self {
        let total: u64 = spans.clone().sum();
        let n = spans.len() + 1;
        let mut acc = 0u64;
        let running = std::iter::once(0).chain(spans.map(move |x| {
            acc += x;
            acc
        }));
        if total <= u32::MAX as u64 {
            let mut v = Vec::with_capacity(n);
            v.extend(running.map(|x| x as u32));
            Starts::Narrow(v)
        } else {
            let mut v = Vec::with_capacity(n);
            v.extend(running);
            Starts::Wide(v)
        }
    }

    fn len(&self) -> usize {
        match self {
            Starts::Narrow(v) => v.len(),
            Starts::Wide(v) => v.len(),
            Starts::Derived { rows, .. } => rows + 1,
        }
    }

    fn get(&self, i: usize) -> u64 {
        match self {
            Starts::Narrow(v) => v[i] as u64,
            Starts::Wide(v) => v[i],
            Starts::Derived {
                offsets,
                first,
                markers,
                ..
            } => offset_at(offsets, first + i)
                // Wrapping: damaged offsets give a wrong start, never a panic;
                // `for_each_piece` checks what it reads.
                .wrapping_sub(offset_at(offsets, *first))
                .wrapping_add(markers * i as u64),
        }
    }

    /// True unless entry `i` is read from a column's offsets and points past
    /// its data.
    #[inline]
    fn in_bounds(&self, i: usize) -> bool {
        match self {
            Starts::Derived {
                column,
                offsets,
                first,
                ..
            } => offset_at(offsets, first + i) <= column.elements(),
            _ => true,
        }
    }

    /// The error for a block whose rows `ks` (shard positions) do not add up:
    /// the first damaged row near them, naming the column's offsets file.
    #[cold]
    fn inconsistent(&self, ks: Range<usize>, reason: String) -> DataError {
        match self {
            Starts::Derived {
                column,
                first,
                rows,
                ..
            } => {
                let lo = first + ks.start.saturating_sub(COARSE) / COARSE * COARSE;
                let hi = first + (ks.end + 2 * COARSE).min(*rows);
                first_bad_row(column, lo..hi)
                    .or_else(|| first_bad_row(column, *first..first + rows))
                    .unwrap_or_else(|| column.row_error(first + ks.start, reason))
            }
            _ => DataError::Row {
                path: None,
                column: String::new(),
                row: ks.start,
                reason,
            },
        }
    }

    fn last(&self) -> u64 {
        self.get(self.len() - 1)
    }

    /// Number of leading entries <= `x`.
    fn count_le(&self, x: u64) -> usize {
        match self {
            Starts::Narrow(v) => v.partition_point(|&y| (y as u64) <= x),
            Starts::Wide(v) => v.partition_point(|&y| y <= x),
            Starts::Derived { coarse, .. } => {
                // Entries are non-decreasing: find the coarse window, then
                // binary search inside it.
                let k = coarse.partition_point(|&y| y <= x);
                let (mut lo, mut hi) = (k.saturating_sub(1) * COARSE, (k * COARSE).min(self.len()));
                if k == 0 {
                    return 0;
                }
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if self.get(mid) <= x {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                lo
            }
        }
    }
}

/// The first row of `rows` whose offsets `column` rejects.
#[cold]
fn first_bad_row(column: &Column, rows: Range<usize>) -> Option<DataError> {
    rows.into_iter().find_map(|r| column.row_range(r).err())
}

#[derive(Debug, Clone)]
struct ShardPack {
    /// Position (in the row set) of the shard's first row.
    first: usize,
    /// Where each row starts in the shard's token stream.
    cum: Starts,
    blocks: u64,
}

/// The block index of a packed dataset: built from token lengths alone, so
/// packed blocks are samples with indices like any other, and every rank can
/// count them before reading a token.
///
/// Packing happens within each shard (rows in order), so a shard's blocks
/// are contiguous in sample numbering and block `b` of a shard is the stream
/// range `[b * block_size, (b + 1) * block_size)`.
#[derive(Debug, Clone)]
pub struct PackIndex {
    spec: PackSpec,
    shards: Vec<ShardPack>,
    block_starts: Vec<u64>,
}

impl PackIndex {
    /// Builds the index. `shards` gives, per shard, the row-set position of
    /// its first row and its rows' token lengths in order.
    pub fn build(spec: PackSpec, shards: impl IntoIterator<Item = (usize, Vec<usize>)>) -> Self {
        let span = |len: usize| spec.row_span(len) as u64;
        let starts: Vec<(usize, Starts)> = shards
            .into_iter()
            .map(|(first, lengths)| (first, Starts::from_spans(lengths.iter().map(|&l| span(l)))))
            .collect();
        Self::from_starts(spec, starts)
    }

    /// Builds the index of unfiltered rows straight from the token `column`'s
    /// row offsets (rows + 1 little-endian u64, as in the cache): `shards`
    /// are contiguous row ranges. Keeps no per-row array.
    ///
    /// Reads (and checks: in order, within the data) every 64th offset of
    /// each shard and its last; a damaged one is an error naming the
    /// column's offsets file and row. The other offsets are checked when a
    /// block reads them ([`for_each_piece`](Self::for_each_piece)).
    pub fn build_contiguous(
        spec: PackSpec,
        column: &Column,
        shards: &[Range<usize>],
    ) -> Result<Self, DataError> {
        let markers = spec.row_span(0) as u64;
        let Some(offsets) = column.offsets() else {
            return Err(DataError::Kind {
                column: column.schema().name.clone(),
                expected: "token list",
                found: "int64",
            });
        };
        let entries = offsets.len() / 8;
        let total = column.elements();
        let mut starts = Vec::with_capacity(shards.len());
        for r in shards {
            if r.start > r.end || r.end >= entries {
                return Err(column.row_error(
                    r.end.saturating_sub(1),
                    format!(
                        "row is out of range: the offsets hold {} rows",
                        entries.saturating_sub(1)
                    ),
                ));
            }
            let base = offset_at(offsets, r.start);
            let mut coarse = Vec::with_capacity(r.len() / COARSE + 1);
            let (mut prev, mut prev_i) = (base, 0usize);
            let samples = (0..=r.len())
                .step_by(COARSE)
                .chain((r.len() % COARSE != 0).then_some(r.len()));
            for i in samples {
                let raw = offset_at(offsets, r.start + i);
                if raw < prev || raw > total {
                    let rows =
                        (r.start + prev_i).saturating_sub(1)..(r.start + i + 1).min(entries - 1);
                    return Err(first_bad_row(column, rows).unwrap_or_else(|| {
                        column.row_error(
                            r.start + i,
                            format!(
                                "offset {raw} is out of order or past the data's {total} elements"
                            ),
                        )
                    }));
                }
                if i % COARSE == 0 {
                    coarse.push(raw - base + markers * i as u64);
                }
                (prev, prev_i) = (raw, i);
            }
            starts.push((
                r.start,
                Starts::Derived {
                    column: column.clone(),
                    offsets: offsets.clone(),
                    first: r.start,
                    rows: r.len(),
                    markers,
                    coarse,
                },
            ));
        }
        Ok(Self::from_starts(spec, starts))
    }

    fn from_starts(spec: PackSpec, shards: impl IntoIterator<Item = (usize, Starts)>) -> Self {
        let b = spec.block_size as u64;
        let mut out = Vec::new();
        let mut block_starts = vec![0u64];
        for (first, cum) in shards {
            let acc = cum.last();
            let blocks = if spec.drop_last {
                acc / b
            } else {
                acc.div_ceil(b)
            };
            block_starts.push(block_starts.last().expect("non-empty") + blocks);
            out.push(ShardPack { first, cum, blocks });
        }
        Self {
            spec,
            shards: out,
            block_starts,
        }
    }

    /// The layout.
    pub fn spec(&self) -> &PackSpec {
        &self.spec
    }

    /// Total number of blocks (samples).
    pub fn num_blocks(&self) -> u64 {
        *self.block_starts.last().expect("non-empty")
    }

    /// Blocks per shard, in shard order.
    pub fn shard_blocks(&self) -> Vec<u64> {
        self.shards.iter().map(|s| s.blocks).collect()
    }

    /// The pieces of block `block`, in order; their lengths add up to block_size.
    pub fn pieces(&self, block: u64) -> Result<Vec<Piece>, DataError> {
        let mut out = Vec::new();
        self.for_each_piece(block, |p| {
            out.push(p);
            Ok::<_, DataError>(())
        })?;
        Ok(out)
    }

    /// Calls `f` with each piece of block `block`, in order, without
    /// allocating; stops at `f`'s first error.
    ///
    /// An index read from a token column's offsets checks each row's
    /// offsets it reads (in order, room for the markers) and that the pieces
    /// fill the block: damaged offsets are an error naming the column's
    /// offsets file and row, never a panic or a short block.
    pub fn for_each_piece<E: From<DataError>>(
        &self,
        block: u64,
        mut f: impl FnMut(Piece) -> Result<(), E>,
    ) -> Result<(), E> {
        let s = self.block_starts.partition_point(|&x| x <= block) - 1;
        let shard = &self.shards[s];
        let b = self.spec.block_size as u64;
        let start = (block - self.block_starts[s]) * b;
        let end = start + b;
        let total = shard.cum.last();
        let markers = self.spec.row_span(0) as u64;
        let k0 = shard.cum.count_le(start).saturating_sub(1);
        // The row before the first one must end where it starts (a damaged
        // offset can make a search land past rows it skips).
        if k0 > 0 {
            let before = shard.cum.get(k0 - 1);
            if shard
                .cum
                .get(k0)
                .checked_sub(before)
                .and_then(|s| s.checked_sub(markers))
                .is_none()
            {
                return Err(shard
                    .cum
                    .inconsistent(k0 - 1..k0, "row offsets out of order".into())
                    .into());
            }
        }
        let mut k = k0;
        // Stream positions the pieces cover; must come to `b`.
        let mut filled = 0u64;
        let mut row_start = shard.cum.get(k0);
        while k + 1 < shard.cum.len() && row_start < end {
            let next = shard.cum.get(k + 1);
            let Some(len) = next
                .checked_sub(row_start)
                .and_then(|span| span.checked_sub(markers))
                .filter(|_| next <= total)
            else {
                return Err(shard
                    .cum
                    .inconsistent(k..k + 1, "row offsets out of order".into())
                    .into());
            };
            let pos = shard.first + k;
            let mut off = row_start;
            let overlap = |a: u64, z: u64| a.max(start) < z.min(end);
            if self.spec.bos.is_some() {
                if overlap(off, off + 1) {
                    filled += 1;
                    f(Piece::Bos(pos))?;
                }
                off += 1;
            }
            let (a, z) = (off.max(start), off.saturating_add(len).min(end));
            if a < z {
                filled += z - a;
                f(Piece::Tokens(pos, (a - off) as usize..(z - off) as usize))?;
            }
            off = off.saturating_add(len);
            if self.spec.eos.is_some() && overlap(off, off.saturating_add(1)) {
                filled += 1;
                f(Piece::Eos(pos))?;
            }
            row_start = next;
            k += 1;
        }
        // The offsets read went up row by row (checked above), so the last
        // one bounds them all: it must be within the data.
        if !shard.cum.in_bounds(k) {
            return Err(shard
                .cum
                .inconsistent(k0..k, "row offsets past the end of the data".into())
                .into());
        }
        if end > total {
            let pad = end - total.max(start);
            filled += pad;
            f(Piece::Pad(pad as usize))?;
        }
        if filled != b {
            return Err(shard
                .cum
                .inconsistent(
                    k0..k.max(k0 + 1),
                    format!(
                        "row offsets out of order: block {block} came to {filled} of {b} tokens"
                    ),
                )
                .into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(block: usize, bos: bool, drop_last: bool) -> PackSpec {
        PackSpec {
            function: "pack_sequences".into(),
            column: None,
            block_size: block,
            bos: bos.then_some(4),
            eos: Some(3),
            drop_last,
            pad_id: 0,
            source_ids: false,
        }
    }

    fn token_column(offsets: &[u64], bytes: Bytes) -> Column {
        Column::from_parts(
            crate::data::ColumnSchema {
                name: "token_ids".into(),
                kind: crate::data::ColumnKind::Tokens,
                width: 2,
            },
            Bytes::owned(vec![0; 2 * *offsets.last().unwrap() as usize]),
            Some(bytes),
        )
    }

    fn piece_len(p: &Piece) -> usize {
        match p {
            Piece::Bos(_) | Piece::Eos(_) => 1,
            Piece::Tokens(_, r) => r.len(),
            Piece::Pad(n) => *n,
        }
    }

    #[test]
    fn varlen_dataset_packs_into_16_blocks_of_8() {
        // mem/raw_varlen/train over 4 contiguous shards.
        let shards = vec![
            (0, vec![4; 4]),
            (4, vec![6; 4]),
            (8, vec![4; 4]),
            (12, vec![10; 4]),
        ];
        let idx = PackIndex::build(spec(8, true, true), shards);
        assert_eq!(idx.shard_blocks(), vec![3, 4, 3, 6]);
        assert_eq!(idx.num_blocks(), 16);
        for b in 0..16 {
            assert_eq!(
                idx.pieces(b).unwrap().iter().map(piece_len).sum::<usize>(),
                8,
                "block {b}"
            );
        }
        assert_eq!(
            idx.pieces(0).unwrap(),
            vec![
                Piece::Bos(0),
                Piece::Tokens(0, 0..4),
                Piece::Eos(0),
                Piece::Bos(1),
                Piece::Tokens(1, 0..1)
            ]
        );
    }

    #[test]
    fn index_from_offsets_equals_index_from_lengths() {
        // 300 rows: shards of 130 and 170 rows cross several coarse windows.
        let mut rng = crate::plan::Rng::new(&[9]);
        let lens: Vec<usize> = (0..300)
            .map(|i| {
                if i % 17 == 0 {
                    0
                } else {
                    rng.below(13) as usize
                }
            })
            .collect();
        let mut offsets = vec![0u64];
        for &l in &lens {
            offsets.push(offsets.last().unwrap() + l as u64);
        }
        let bytes = Bytes::owned(offsets.iter().flat_map(|o| o.to_le_bytes()).collect());
        let column = token_column(&offsets, bytes.clone());
        for shards in [
            vec![0..4, 4..9],
            vec![0..130, 130..300],
            vec![0..64, 64..128, 128..129, 129..300],
        ] {
            for (block, bos, drop_last) in [
                (4, true, false),
                (5, false, true),
                (16, true, true),
                (1, false, false),
            ] {
                let a = PackIndex::build(
                    spec(block, bos, drop_last),
                    shards.iter().map(|r| (r.start, lens[r.clone()].to_vec())),
                );
                let b = PackIndex::build_contiguous(spec(block, bos, drop_last), &column, &shards)
                    .unwrap();
                assert_eq!(a.shard_blocks(), b.shard_blocks());
                for blk in 0..a.num_blocks() {
                    assert_eq!(
                        a.pieces(blk).unwrap(),
                        b.pieces(blk).unwrap(),
                        "block {blk} of {shards:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn pads_the_last_block_when_not_dropping() {
        let idx = PackIndex::build(spec(8, false, false), vec![(0, vec![3, 3])]);
        assert_eq!(idx.num_blocks(), 1);
        assert_eq!(
            idx.pieces(0).unwrap(),
            vec![
                Piece::Tokens(0, 0..3),
                Piece::Eos(0),
                Piece::Tokens(1, 0..3),
                Piece::Eos(1)
            ]
        );
        let idx = PackIndex::build(spec(5, false, false), vec![(0, vec![3, 3])]);
        assert_eq!(idx.num_blocks(), 2);
        assert_eq!(
            idx.pieces(1).unwrap(),
            vec![Piece::Tokens(1, 1..3), Piece::Eos(1), Piece::Pad(2)]
        );
    }

    #[test]
    fn every_token_lands_in_exactly_one_block() {
        for block in 1..9 {
            for bos in [false, true] {
                let lens = vec![0, 1, 5, 2, 9, 3];
                let idx = PackIndex::build(
                    spec(block, bos, false),
                    vec![(0, lens.clone()[..3].to_vec()), (3, lens[3..].to_vec())],
                );
                let mut seen = vec![0usize; lens.len()];
                for b in 0..idx.num_blocks() {
                    let ps = idx.pieces(b).unwrap();
                    assert_eq!(ps.iter().map(piece_len).sum::<usize>(), block);
                    for p in ps {
                        if let Piece::Tokens(pos, r) = p {
                            seen[pos] += r.len();
                        }
                    }
                }
                assert_eq!(seen, lens);
            }
        }
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn damaged_offsets_are_errors_naming_the_row_never_panics() {
        // 200 rows of 3 ids; row 100's end offset decreases, then row 150's
        // runs past the data.
        let mut offsets: Vec<u64> = (0..=200).map(|i| 3 * i).collect();
        let good = token_column(&offsets, Bytes::owned(Vec::new()));
        let column = |offsets: &[u64]| {
            Column::from_parts(
                good.schema().clone(),
                good.data().clone(),
                Some(Bytes::owned(
                    offsets.iter().flat_map(|o| o.to_le_bytes()).collect(),
                )),
            )
            .with_files("/c/col1.data".into(), Some("/c/col1.offsets".into()))
        };
        offsets[101] = 7;
        let shards = [0..200];
        for (block, bos) in [(4, true), (5, false), (16, true), (600, false)] {
            match PackIndex::build_contiguous(spec(block, bos, false), &column(&offsets), &shards) {
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("/c/col1.offsets") && e.contains("row 100"),
                        "{e}"
                    );
                }
                Ok(idx) => {
                    let errors: Vec<String> = (0..idx.num_blocks())
                        .filter_map(|b| idx.pieces(b).err().map(|e| e.to_string()))
                        .collect();
                    assert!(!errors.is_empty(), "block size {block}: no error");
                    for e in errors {
                        assert!(
                            e.contains("/c/col1.offsets") && e.contains("row 100"),
                            "{e}"
                        );
                    }
                }
            }
        }
        // A sampled (every 64th) offset out of order or past the data fails the build.
        for (i, v) in [(128, 1), (64, 10_000)] {
            let mut o: Vec<u64> = (0..=200).map(|i| 3 * i).collect();
            o[i] = v;
            let e = PackIndex::build_contiguous(spec(8, true, false), &column(&o), &shards)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("/c/col1.offsets") && e.contains(&format!("row {}", i - 1)),
                "{e}"
            );
        }
        assert!(
            PackIndex::build_contiguous(spec(8, true, false), &column(&offsets), &[0..201])
                .is_err()
        );
    }
}
