//! The plan: which sample each rank yields at each step, as a pure function.
//!
//! Inputs: the number of samples S (rows after filtering, or packed blocks),
//! the shard layout, seed, epoch, world size W, rank r, the remainder rule,
//! and whether the stream is infinite. Output: the rank's sequence of sample
//! indices. Nothing here reads data, and nothing depends on timing or on the
//! number of worker threads.
//!
//! Rules (see `docs/plan.md` for the reasoning):
//! 1. **Epoch order** — a permutation of `0..S`:
//!    - map-style, shuffled: a keyed Feistel permutation (seed, epoch);
//!    - map-style, sequential (eval, debug-overfit): identity;
//!    - iterable: shards in order (or in a (seed, epoch)-keyed order when a
//!      shuffle buffer is set), each shard's samples in order, then the
//!      shuffle buffer applied to that stream with a (seed, epoch)-keyed RNG.
//! 2. **Split by rank** at sample granularity: rank r takes positions
//!    `r, r + W, r + 2W, ...` of the epoch order. With [`Remainder::Pad`]
//!    every rank takes `ceil(S / W)` positions, wrapping around to the start
//!    of the order (PyTorch `DistributedSampler` semantics: at most W-1
//!    samples are seen twice); with [`Remainder::Drop`] every rank takes
//!    `floor(S / W)` (at most W-1 samples are skipped). Either way every rank
//!    has the same count, hence the same number of batches.
//! 3. **Infinite** (`make_infinite`): the epoch orders of epochs e, e+1, ...
//!    are concatenated into one endless stream, split by rule 2 without a
//!    remainder.
//! 4. **Resume** (`start`): a plan can begin at global position `start` of
//!    the epoch's (padded) order: rank r then takes `start + r, start + r + W,
//!    ...`, and the remainder rule applies to the `S - start` positions left.
//!    Because ranks interleave, the first `k * B * W` positions are exactly
//!    what W ranks consumed in k batches of B, so a position is the whole
//!    resume state, for the same or a different W.

mod order;
mod packing;
mod rng;

pub use order::{epoch_order, shard_ranges, Order, OrderKind, ORDER_ALGORITHM_VERSION};
pub use packing::{PackIndex, PackSpec, Piece, PACK_ALGORITHM};
pub use rng::Rng;

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// What happens to the last `S mod W` samples when splitting by rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remainder {
    /// Every rank takes `ceil(S/W)` samples; the shortfall wraps around to
    /// the start of the epoch order (nothing lost; up to W-1 repeats).
    #[default]
    Pad,
    /// Every rank takes `floor(S/W)` samples (no repeats; up to W-1 skipped).
    Drop,
}

/// The split-by-rank rule (rule 2 above) as an explicit id for resume
/// fingerprints; a change to the rule must change this string.
pub const SPLIT_ALGORITHM: &str = "interleave(start + rank + k*world)-v1";

/// Everything the plan of one rank depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSpec {
    /// Number of samples S in the epoch.
    pub num_samples: u64,
    /// How the epoch order is made.
    pub order: OrderKind,
    /// Seed of every shuffle.
    pub seed: u64,
    /// Number of ranks sharing the samples (1: no split).
    pub world_size: u64,
    /// This rank, `< world_size`.
    pub rank: u64,
    /// Remainder rule of the split.
    pub remainder: Remainder,
    /// Repeat forever (epoch orders concatenated).
    pub infinite: bool,
    /// Global position of the epoch's order this plan starts at (0 unless resumed).
    pub start: u64,
}

/// A [`PlanSpec`] that cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// `world_size` is 0.
    #[error("world_size = 0 is invalid: at least one rank must share the samples")]
    ZeroWorld,
    /// `rank` is not below `world_size`.
    #[error("rank = {rank} is invalid: it must be below world_size = {world_size}")]
    Rank {
        /// The rank.
        rank: u64,
        /// The world size.
        world_size: u64,
    },
    /// A shard layout that does not add up to the sample count.
    #[error("the shard sizes add up to {sum} but the plan has {num_samples} samples")]
    Shards {
        /// Sum of the shard sizes.
        sum: u64,
        /// `num_samples`.
        num_samples: u64,
    },
}

impl PlanSpec {
    /// Checks that the plan can be followed: at least one rank, the rank
    /// below the world size, shards that add up to the samples.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.world_size == 0 {
            return Err(PlanError::ZeroWorld);
        }
        if self.rank >= self.world_size {
            return Err(PlanError::Rank {
                rank: self.rank,
                world_size: self.world_size,
            });
        }
        if let OrderKind::Stream { shard_sizes, .. } = &self.order {
            let sum = shard_sizes
                .iter()
                .try_fold(0u64, |a, &n| a.checked_add(n))
                .unwrap_or(u64::MAX);
            if sum != self.num_samples {
                return Err(PlanError::Shards {
                    sum,
                    num_samples: self.num_samples,
                });
            }
        }
        Ok(())
    }

    /// Samples this rank yields per epoch (`None` when infinite). A
    /// `world_size` of 0 counts as 1 here; [`validate`](Self::validate)
    /// rejects it.
    pub fn rank_len(&self) -> Option<u64> {
        if self.infinite {
            return None;
        }
        let (left, w) = (
            self.num_samples.saturating_sub(self.start),
            self.world_size.max(1),
        );
        Some(match self.remainder {
            Remainder::Pad => left.div_ceil(w),
            Remainder::Drop => left / w,
        })
    }

    /// Batches this rank yields per epoch (`None` when infinite). A
    /// `batch_size` of 0 counts as 1.
    pub fn num_batches(&self, batch_size: u64, drop_last: bool) -> Option<u64> {
        let batch_size = batch_size.max(1);
        self.rank_len().map(|n| {
            if drop_last {
                n / batch_size
            } else {
                n.div_ceil(batch_size)
            }
        })
    }

    /// The rank's stream for `epoch`, after [`validate`](Self::validate).
    pub fn stream(&self, epoch: u64) -> Result<RankStream, PlanError> {
        self.validate()?;
        Ok(RankStream {
            spec: self.clone(),
            epoch,
            cache: Mutex::new(Vec::new()),
        })
    }
}

impl Drop for RankStream {
    fn drop(&mut self) {
        // A large order freed at the end of an epoch would otherwise stay in
        // glibc's heap (its mmap threshold grows after the first such free),
        // so a long run's resident memory would ratchet up; hand it back.
        let big = self.cached_bytes() >= 1 << 20;
        self.cache
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if big {
            // SAFETY: malloc_trim only returns free heap memory to the OS.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let _ = big;
    }
}

/// One rank's sample sequence for one epoch (or, when infinite, from one
/// epoch on). Epoch orders are computed on first use and cached, so a lookup
/// is O(1) after the first.
#[derive(Debug)]
pub struct RankStream {
    spec: PlanSpec,
    epoch: u64,
    cache: Mutex<Vec<(u64, Arc<Order>)>>,
}

impl RankStream {
    /// The plan this stream follows.
    pub fn spec(&self) -> &PlanSpec {
        &self.spec
    }

    /// Number of samples in the stream (`None`: infinite).
    pub fn len(&self) -> Option<u64> {
        self.spec.rank_len()
    }

    /// True when the stream yields nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0) || self.spec.num_samples == 0
    }

    fn order(&self, epoch: u64) -> Arc<Order> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, o)) = cache.iter().find(|(e, _)| *e == epoch) {
            return o.clone();
        }
        let o = Arc::new(epoch_order(
            &self.spec.order,
            self.spec.num_samples,
            self.spec.seed,
            epoch,
        ));
        if cache.len() >= 2 {
            cache.remove(0);
        }
        cache.push((epoch, o.clone()));
        o
    }

    /// Bytes held by the cached explicit orders.
    fn cached_bytes(&mut self) -> usize {
        let cache = self.cache.get_mut().unwrap_or_else(|e| e.into_inner());
        cache
            .iter()
            .map(|(_, o)| match o.as_ref() {
                Order::Explicit(v) => v.len() * 4,
                Order::ExplicitWide(v) => v.len() * 8,
                _ => 0,
            })
            .sum()
    }

    /// Appends the samples of steps `from..to` (stopping at the stream's
    /// end) to `out`; one lock for the whole range.
    pub fn fill(&self, from: u64, to: u64, out: &mut Vec<u64>) {
        let s = self.spec.num_samples;
        if s == 0 {
            return;
        }
        let to = match self.spec.rank_len() {
            Some(n) => to.min(n),
            None => to,
        };
        // Positions wrap rather than overflow: a stream never gets near 2^64
        // positions, and a restored start is below S (see `DataLoader::restore`).
        let (w, base) = (
            self.spec.world_size,
            self.spec.start.wrapping_add(self.spec.rank),
        );
        let at = |j: u64| base.wrapping_add(j.wrapping_mul(w));
        if self.spec.infinite {
            for j in from..to {
                let g = at(j);
                out.push(self.order(self.epoch.wrapping_add(g / s)).get(g % s));
            }
        } else {
            let order = self.order(self.epoch);
            out.extend((from..to).map(|j| order.get(at(j) % s)));
        }
    }

    /// The sample at step `j` of this rank's stream, or `None` past its end.
    pub fn get(&self, j: u64) -> Option<u64> {
        let mut one = Vec::with_capacity(1);
        self.fill(j, j + 1, &mut one);
        one.pop()
    }
}
