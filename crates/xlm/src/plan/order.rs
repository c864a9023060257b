use super::Rng;
use std::ops::Range;
use std::sync::Arc;

const TAG_PERMUTE: u64 = 0x7065_726d;
const TAG_SHARDS: u64 = 0x7368_6172;
const TAG_BUFFER: u64 = 0x6275_6666;

/// How an epoch order is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKind {
    /// `0..S` in order.
    Sequential,
    /// A uniform permutation keyed by (seed, epoch).
    Permuted,
    /// Iterable mode: shards of the given sample counts, contiguous in sample
    /// numbering; with `shuffle_buffer`, shard order and buffer are shuffled.
    Stream {
        /// Samples per shard, in shard order.
        shard_sizes: Arc<Vec<u64>>,
        /// Shuffle buffer size (None or 0: no shuffling).
        shuffle_buffer: Option<usize>,
    },
}

/// Version of the order algorithms below (identity, keyed Feistel
/// permutation, shard-stream with shard shuffle and shuffle buffer, all
/// keyed by SplitMix64 [`Rng`]s). Any change to what an order yields for
/// the same inputs must bump it: it is part of every pipeline fingerprint,
/// so a saved loader state never restores into a different order. The
/// golden-vector tests (`tests/golden.rs`) pin the current outputs.
pub const ORDER_ALGORITHM_VERSION: u32 = 2;

impl OrderKind {
    /// The order's algorithm as an explicit, versioned id with its
    /// parameters (what a resume fingerprint hashes; never Debug text).
    pub fn algorithm(&self) -> serde_json::Value {
        let v = ORDER_ALGORITHM_VERSION;
        match self {
            OrderKind::Sequential => serde_json::json!({"order": "identity", "version": v}),
            OrderKind::Permuted => serde_json::json!({
                "order": "feistel4-cycle-walk",
                "keys": "splitmix64(seed, epoch, 'perm')",
                "version": v,
            }),
            OrderKind::Stream {
                shard_sizes,
                shuffle_buffer,
            } => {
                let sizes: Vec<u8> = shard_sizes.iter().flat_map(|n| n.to_le_bytes()).collect();
                serde_json::json!({
                    "order": "shard-stream",
                    "shards": shard_sizes.len(),
                    "shard_sizes": crate::hash::fingerprint(&sizes),
                    "shard_shuffle": "fisher-yates(splitmix64(seed, epoch, 'shar'))",
                    "shuffle_buffer": shuffle_buffer.unwrap_or(0),
                    "buffer": "replace-uniform(splitmix64(seed, epoch, 'buff'))",
                    "version": v,
                })
            }
        }
    }
}

/// An epoch order: a permutation of `0..S`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// The identity on `0..S` (costs no memory).
    Identity(u64),
    /// A keyed pseudo-random permutation (costs no memory; O(1) per lookup).
    Feistel(Feistel),
    /// An explicit permutation, 4 bytes per sample.
    Explicit(Vec<u32>),
    /// An explicit permutation of more than 2^32 samples.
    ExplicitWide(Vec<u64>),
}

impl Order {
    /// Position `i` of the order.
    pub fn get(&self, i: u64) -> u64 {
        match self {
            Order::Identity(_) => i,
            Order::Feistel(f) => f.get(i),
            Order::Explicit(v) => v[i as usize] as u64,
            Order::ExplicitWide(v) => v[i as usize],
        }
    }

    /// Length S.
    pub fn len(&self) -> u64 {
        match self {
            Order::Identity(n) => *n,
            Order::Feistel(f) => f.n,
            Order::Explicit(v) => v.len() as u64,
            Order::ExplicitWide(v) => v.len() as u64,
        }
    }

    /// True when S = 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The order as a vector.
    pub fn to_vec(&self) -> Vec<u64> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// A keyed bijection on `0..n`: a 4-round balanced Feistel network on the
/// smallest even power of two >= n, with cycle walking (values >= n are
/// encrypted again, at most ~4 times on average), so a shuffled order of
/// any size costs no memory and O(1) per position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feistel {
    n: u64,
    half_bits: u32,
    keys: [u64; 4],
}

impl Feistel {
    /// The permutation of `0..n` keyed by `rng`.
    pub fn new(n: u64, rng: &mut Rng) -> Self {
        let bits = 64 - n.saturating_sub(1).leading_zeros();
        let half_bits = bits.div_ceil(2).max(1);
        Self {
            n,
            half_bits,
            keys: [
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64(),
            ],
        }
    }

    fn round(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for k in self.keys {
            let mut f = (r ^ k).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            f ^= f >> 29;
            f = f.wrapping_mul(0xbf58_476d_1ce4_e5b9);
            f ^= f >> 32;
            (l, r) = (r, l ^ (f & mask));
        }
        (l << self.half_bits) | r
    }

    /// Position `i`'s value.
    pub fn get(&self, i: u64) -> u64 {
        debug_assert!(i < self.n);
        let mut x = self.round(i);
        while x >= self.n {
            x = self.round(x);
        }
        x
    }
}

/// Contiguous shard ranges over `0..n`: `k` ranges whose sizes differ by at
/// most one, larger ones first.
pub fn shard_ranges(n: usize, k: usize) -> Vec<Range<usize>> {
    let (base, extra) = (n / k, n % k);
    let mut start = 0;
    (0..k)
        .map(|i| {
            let len = base + (i < extra) as usize;
            let r = start..start + len;
            start += len;
            r
        })
        .collect()
}

/// The epoch order of `s` samples (see the module docs for the rules).
pub fn epoch_order(kind: &OrderKind, s: u64, seed: u64, epoch: u64) -> Order {
    match kind {
        OrderKind::Sequential => Order::Identity(s),
        OrderKind::Permuted => {
            Order::Feistel(Feistel::new(s, &mut Rng::new(&[seed, epoch, TAG_PERMUTE])))
        }
        OrderKind::Stream {
            shard_sizes,
            shuffle_buffer,
        } => {
            let buffer = shuffle_buffer.unwrap_or(0);
            if buffer == 0 {
                return Order::Identity(s);
            }
            let mut starts = Vec::with_capacity(shard_sizes.len());
            let mut acc = 0;
            for &n in shard_sizes.iter() {
                starts.push(acc);
                acc += n;
            }
            debug_assert_eq!(acc, s);
            let mut shards: Vec<usize> = (0..shard_sizes.len()).collect();
            Rng::new(&[seed, epoch, TAG_SHARDS]).shuffle(&mut shards);
            let stream = shards
                .into_iter()
                .flat_map(|i| starts[i]..starts[i] + shard_sizes[i]);
            let mut rng = Rng::new(&[seed, epoch, TAG_BUFFER]);
            if u32::try_from(s).is_ok() {
                let mut out = Vec::with_capacity(s as usize);
                buffer_shuffle(stream, buffer, &mut rng, |x| out.push(x as u32));
                Order::Explicit(out)
            } else {
                let mut out = Vec::with_capacity(s as usize);
                buffer_shuffle(stream, buffer, &mut rng, |x| out.push(x));
                Order::ExplicitWide(out)
            }
        }
    }
}

/// The shuffle-buffer algorithm of streaming loaders, over indices: fill a
/// buffer of `size`; then each incoming item replaces a uniformly chosen
/// buffered one, which is emitted; at the end the rest is emitted shuffled.
fn buffer_shuffle(
    stream: impl Iterator<Item = u64>,
    size: usize,
    rng: &mut Rng,
    mut emit: impl FnMut(u64),
) {
    let mut buf: Vec<u64> = Vec::with_capacity(size.min(1 << 20));
    for x in stream {
        if buf.len() == size {
            let i = rng.below(size as u64) as usize;
            emit(buf[i]);
            buf[i] = x;
        } else {
            buf.push(x);
        }
    }
    rng.shuffle(&mut buf);
    buf.into_iter().for_each(emit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_ranges_are_contiguous_and_balanced() {
        for n in 0..40 {
            for k in 1..10 {
                let r = shard_ranges(n, k);
                assert_eq!(r.len(), k);
                assert_eq!(r[0].start, 0);
                assert_eq!(r[k - 1].end, n);
                assert!(r.windows(2).all(|w| w[0].end == w[1].start));
                let lens: Vec<usize> = r.iter().map(|x| x.len()).collect();
                assert!(lens.iter().max().unwrap() - lens.iter().min().unwrap() <= 1);
            }
        }
    }

    #[test]
    fn orders_are_permutations() {
        let kinds = [
            OrderKind::Sequential,
            OrderKind::Permuted,
            OrderKind::Stream {
                shard_sizes: Arc::new(vec![3, 3, 2]),
                shuffle_buffer: Some(3),
            },
            OrderKind::Stream {
                shard_sizes: Arc::new(vec![3, 3, 2]),
                shuffle_buffer: None,
            },
        ];
        for k in &kinds {
            let mut v = epoch_order(k, 8, 7, 1).to_vec();
            v.sort();
            assert_eq!(v, (0..8).collect::<Vec<_>>());
        }
        assert_ne!(
            epoch_order(&kinds[1], 50, 7, 0),
            epoch_order(&kinds[1], 50, 7, 1)
        );
        assert_eq!(
            epoch_order(&kinds[1], 50, 7, 1),
            epoch_order(&kinds[1], 50, 7, 1)
        );
    }
}
