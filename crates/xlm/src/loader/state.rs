//! A train loader's position, small enough to save after every batch.
//!
//! The plan is a pure function, so a position in it is a few integers: the
//! epoch and the number of global positions of that epoch's order already
//! consumed. The state is the same on every rank (it is global), so saving it
//! from rank 0 alone is correct. Fingerprints of the data and of the
//! pipeline make restoring against anything else an error.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The `format` field of every state.
pub const STATE_FORMAT: &str = "xlm-loader-state";
/// The state version this build writes and reads.
///
/// Version 2: pipeline fingerprints name the order, split and packing
/// algorithms explicitly (version 1 hashed Debug text, which did not change
/// when map-style shuffling moved from Fisher-Yates to a Feistel
/// permutation). States of any other version are rejected.
pub const STATE_VERSION: u32 = 2;

/// A train loader's resumable position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoaderState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// [`STATE_VERSION`].
    pub version: u32,
    /// Fingerprint of the data (cache manifest checksums, or the bytes of in-memory data).
    pub dataset_fingerprint: String,
    /// Fingerprint of everything that shapes the sample space and its order
    /// (filter, processor, packing, shards, shuffle buffer, remainder rule,
    /// block size, collator, loader type, sample count).
    pub pipeline_fingerprint: String,
    /// Seed of every shuffle.
    pub seed: u64,
    /// The epoch in progress.
    pub epoch: u64,
    /// Global positions of the epoch's order consumed by all ranks together.
    pub consumed: u64,
    /// Batch size times world size at save time (named `global_batch_size`
    /// in states written before the data module's own `global_batch_size`
    /// existed; still read).
    #[serde(alias = "global_batch_size")]
    pub samples_per_step: u64,
    /// World size at save time (ranks sharing the samples).
    pub world_size: u64,
    /// Worker threads at save time (informational: workers never change the stream).
    pub num_workers: usize,
}

/// Why a state cannot be restored.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// The text is not a valid loader state.
    #[error("loader state is corrupted or not a loader state: {0}")]
    Corrupt(String),
    /// The state was written by an xlm with other order algorithms.
    #[error("loader state version {found} is not the version this xlm reads ({supported}): orders changed between versions, so the saved position would land elsewhere; resume with the xlm that saved it, or start the run afresh")]
    Version {
        /// The state's version.
        found: u64,
        /// The version this build reads and writes.
        supported: u32,
    },
    /// The state was saved for different data.
    #[error("loader state was saved for different data: dataset fingerprint {saved} != {current}; resume against the cache the state was saved with")]
    Dataset {
        /// The dataset fingerprint in the state.
        saved: String,
        /// The fingerprint of the current data.
        current: String,
    },
    /// The state was saved for a different pipeline.
    #[error("loader state was saved for a different pipeline: pipeline fingerprint {saved} != {current} (filter, processor, packing, shards, shuffle buffer, remainder rule, block size, collator or loader type changed)")]
    Pipeline {
        /// The pipeline fingerprint in the state.
        saved: String,
        /// The fingerprint of the current pipeline.
        current: String,
    },
    /// The state was saved with a different shuffle seed.
    #[error("loader state was saved with shuffle seed {saved} but this loader uses {current}")]
    Seed {
        /// The seed in the state.
        saved: u64,
        /// The seed of this loader.
        current: u64,
    },
    /// The samples per step (batch_size x world_size) would change.
    #[error("samples per step (batch_size x world_size) would change from {saved} ({saved_world} rank(s)) to {current} (batch_size {batch_size} x {world} rank(s)); keep it constant: set dataloader_kwargs.batch_size to {saved}/{world} (the saved samples per step must divide by the new world size)")]
    SamplesPerStep {
        /// The samples per step in the state.
        saved: u64,
        /// The world size in the state.
        saved_world: u64,
        /// The samples per step now.
        current: u64,
        /// The per-rank batch size now.
        batch_size: u64,
        /// The world size now.
        world: u64,
    },
    /// The state is past the end of its epoch.
    #[error("loader state says {consumed} positions of epoch {epoch} were consumed, more than the epoch has ({total}); the state does not belong to this loader")]
    PastEnd {
        /// The epoch in the state.
        epoch: u64,
        /// Positions the state says were consumed.
        consumed: u64,
        /// Positions the epoch has.
        total: u64,
    },
}

impl LoaderState {
    /// Parses a state, checking format and version.
    pub fn from_json(text: &str) -> Result<Self, ResumeError> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ResumeError::Corrupt(e.to_string()))?;
        let version = v.get("version").and_then(|x| x.as_u64()).unwrap_or(0);
        if v.get("format").and_then(|f| f.as_str()) != Some(STATE_FORMAT) {
            return Err(ResumeError::Corrupt(format!(
                "`format` is not \"{STATE_FORMAT}\""
            )));
        }
        if version != u64::from(STATE_VERSION) {
            return Err(ResumeError::Version {
                found: version,
                supported: STATE_VERSION,
            });
        }
        serde_json::from_value(v).map_err(|e| ResumeError::Corrupt(e.to_string()))
    }

    /// The state as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("state serialises")
    }
}
