use crate::data::{read_u64 as offset_at, Bytes};
use serde::Serialize;
use std::ops::Range;

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
    Derived {
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
            } => offset_at(offsets, first + i) - offset_at(offsets, *first) + markers * i as u64,
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

    /// Builds the index of unfiltered rows straight from the token column's
    /// row `offsets` (rows + 1 little-endian u64, as in the cache): `shards`
    /// are contiguous row ranges. Keeps no per-row array.
    pub fn build_contiguous(spec: PackSpec, offsets: &Bytes, shards: &[Range<usize>]) -> Self {
        let markers = spec.row_span(0) as u64;
        Self::from_starts(
            spec,
            shards.iter().map(|r| {
                let mut starts = Starts::Derived {
                    offsets: offsets.clone(),
                    first: r.start,
                    rows: r.len(),
                    markers,
                    coarse: Vec::new(),
                };
                let c: Vec<u64> = (0..starts.len())
                    .step_by(COARSE)
                    .map(|i| starts.get(i))
                    .collect();
                if let Starts::Derived { coarse, .. } = &mut starts {
                    *coarse = c;
                }
                (r.start, starts)
            }),
        )
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
    pub fn pieces(&self, block: u64) -> Vec<Piece> {
        let mut out = Vec::new();
        self.for_each_piece(block, |p| out.push(p));
        out
    }

    /// Calls `f` with each piece of block `block`, in order, without allocating.
    pub fn for_each_piece(&self, block: u64, mut f: impl FnMut(Piece)) {
        let s = self.block_starts.partition_point(|&x| x <= block) - 1;
        let shard = &self.shards[s];
        let b = self.spec.block_size as u64;
        let start = (block - self.block_starts[s]) * b;
        let end = start + b;
        let total = shard.cum.last();
        let mut k = shard.cum.count_le(start).saturating_sub(1);
        while k + 1 < shard.cum.len() && shard.cum.get(k) < end {
            let row_start = shard.cum.get(k);
            let len = (shard.cum.get(k + 1) - row_start) as usize - self.spec.row_span(0);
            let pos = shard.first + k;
            let mut off = row_start;
            let overlap = |a: u64, z: u64| a.max(start) < z.min(end);
            if self.spec.bos.is_some() {
                if overlap(off, off + 1) {
                    f(Piece::Bos(pos));
                }
                off += 1;
            }
            let (a, z) = (off.max(start), (off + len as u64).min(end));
            if a < z {
                f(Piece::Tokens(pos, (a - off) as usize..(z - off) as usize));
            }
            off += len as u64;
            if self.spec.eos.is_some() && overlap(off, off + 1) {
                f(Piece::Eos(pos));
            }
            k += 1;
        }
        if end > total {
            f(Piece::Pad((end - total.max(start)) as usize));
        }
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
                idx.pieces(b).iter().map(piece_len).sum::<usize>(),
                8,
                "block {b}"
            );
        }
        assert_eq!(
            idx.pieces(0),
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
                let b = PackIndex::build_contiguous(spec(block, bos, drop_last), &bytes, &shards);
                assert_eq!(a.shard_blocks(), b.shard_blocks());
                for blk in 0..a.num_blocks() {
                    assert_eq!(a.pieces(blk), b.pieces(blk), "block {blk} of {shards:?}");
                }
            }
        }
    }

    #[test]
    fn pads_the_last_block_when_not_dropping() {
        let idx = PackIndex::build(spec(8, false, false), vec![(0, vec![3, 3])]);
        assert_eq!(idx.num_blocks(), 1);
        assert_eq!(
            idx.pieces(0),
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
            idx.pieces(1),
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
                    let ps = idx.pieces(b);
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
}
