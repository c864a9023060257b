//! Errors of the distributed runtime.

use std::time::Duration;
use thiserror::Error;

/// Errors of the distributed runtime. Each names the rank that reports it,
/// and where it applies the operation and the peer.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum DistError {
    /// A rank variable is not a number.
    #[error("environment variable {var}={value:?} is not a non-negative integer")]
    NotANumber {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// A rank not below its world size.
    #[error("{rank_var}={rank} is not below {world_var}={world}")]
    RankOutOfRange {
        /// The rank variable.
        rank_var: &'static str,
        /// Its value.
        rank: usize,
        /// The world-size variable.
        world_var: &'static str,
        /// Its value.
        world: usize,
    },
    /// One variable of a pair is set without the other.
    #[error(
        "{var} is set but {missing} is not; set both (torchrun sets RANK and WORLD_SIZE together)"
    )]
    Incomplete {
        /// The variable that is set.
        var: &'static str,
        /// The one that is missing.
        missing: &'static str,
    },
    /// A world size of 0.
    #[error("{0} must be at least 1")]
    ZeroWorld(&'static str),
    /// `MASTER_ADDR` does not resolve.
    #[error("cannot resolve MASTER_ADDR {addr}:{port}: {reason}")]
    Resolve {
        /// The address.
        addr: String,
        /// The port.
        port: u16,
        /// The resolver's error.
        reason: String,
    },
    /// An operation ran out of time; `missing` are the ranks that did not arrive.
    #[error("rank {rank}: {op} timed out after {timeout:?}; missing rank(s): {missing:?}")]
    Timeout {
        /// The rank reporting.
        rank: usize,
        /// The operation.
        op: String,
        /// Its timeout.
        timeout: Duration,
        /// The ranks that did not arrive.
        missing: Vec<usize>,
    },
    /// An operation failed (the reason says why, e.g. rank 0's report).
    #[error("rank {rank}: {op} failed: {reason}")]
    Failed {
        /// The rank reporting.
        rank: usize,
        /// The operation.
        op: String,
        /// Why.
        reason: String,
    },
    /// Peers' connections closed (they exited or crashed).
    #[error("rank {rank}: {op}: rank(s) {lost:?} disconnected (exited or crashed)")]
    Lost {
        /// The rank reporting.
        rank: usize,
        /// The operation.
        op: String,
        /// The ranks whose connection closed.
        lost: Vec<usize>,
    },
    /// Two ranks called different collectives at the same step.
    #[error(
        "rank {rank}: {op}: rank {peer} called {peer_op} at the same step (every rank must call the same collectives in the same order)"
    )]
    Mismatch {
        /// The rank reporting (rank 0, which compares).
        rank: usize,
        /// Its operation.
        op: String,
        /// The rank that called something else.
        peer: usize,
        /// What that rank called.
        peer_op: String,
    },
    /// A peer sent something the protocol does not allow: bytes that are not
    /// a frame, another job's nonce, a frame out of step.
    #[error("rank {rank}: {op}: protocol error from {peer}: {reason}")]
    Protocol {
        /// The rank reporting.
        rank: usize,
        /// The operation.
        op: String,
        /// The peer (`rank 2`, or rank 0's address).
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// Rank 0 refused this rank at the rendezvous.
    #[error("rank {rank}: rendezvous: rank 0 at {addr} refused this rank: {reason} (this rank's job nonce: {nonce:?})")]
    Rejected {
        /// The rank refused.
        rank: usize,
        /// Rank 0's address.
        addr: String,
        /// Rank 0's reason.
        reason: String,
        /// This rank's job nonce.
        nonce: String,
    },
    /// The group failed in an earlier operation and can no longer be used
    /// (its connections may be mid-frame); `cause` is that failure.
    #[error("rank {rank}: {op}: the process group is broken by an earlier failure: {cause}")]
    Broken {
        /// The rank reporting.
        rank: usize,
        /// The operation refused.
        op: String,
        /// The failure that broke the group.
        cause: Box<DistError>,
    },
}

impl DistError {
    /// The error that broke the group, for [`Broken`](Self::Broken); else itself.
    pub fn root_cause(&self) -> &DistError {
        match self {
            DistError::Broken { cause, .. } => cause.root_cause(),
            e => e,
        }
    }
}
