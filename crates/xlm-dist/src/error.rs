//! Errors of the distributed runtime.

use std::time::Duration;
use thiserror::Error;

/// Errors of the distributed runtime.
#[derive(Debug, Error)]
pub enum DistError {
    #[error("environment variable {var}={value:?} is not a non-negative integer")]
    NotANumber { var: &'static str, value: String },
    #[error("{rank_var}={rank} is not below {world_var}={world}")]
    RankOutOfRange {
        rank_var: &'static str,
        rank: usize,
        world_var: &'static str,
        world: usize,
    },
    #[error(
        "{var} is set but {missing} is not; set both (torchrun sets RANK and WORLD_SIZE together)"
    )]
    Incomplete {
        var: &'static str,
        missing: &'static str,
    },
    #[error("{0} must be at least 1")]
    ZeroWorld(&'static str),
    #[error("cannot resolve MASTER_ADDR {addr}:{port}: {reason}")]
    Resolve {
        addr: String,
        port: u16,
        reason: String,
    },
    #[error("rank {rank}: {op} timed out after {timeout:?}; missing rank(s): {missing:?}")]
    Timeout {
        rank: usize,
        op: String,
        timeout: Duration,
        missing: Vec<usize>,
    },
    #[error("rank {rank}: {op} failed: {reason}")]
    Failed {
        rank: usize,
        op: String,
        reason: String,
    },
    #[error("rank {rank}: {op}: rank(s) {lost:?} disconnected (exited or crashed)")]
    Lost {
        rank: usize,
        op: String,
        lost: Vec<usize>,
    },
}
