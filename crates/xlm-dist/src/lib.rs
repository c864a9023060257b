//! xlm's distributed runtime and launcher: std + libc, no data layer.
//!
//! - [`RankEnv`]: who this process is (from torchrun, `xlm launch` or SLURM
//!   variables), including the job nonce ([`job_nonce`]).
//! - [`ProcessGroup`]: how ranks meet: a TCP rendezvous at
//!   `MASTER_ADDR:MASTER_PORT` with barrier, all-gather and broadcast.
//! - [`launch`]: `xlm launch`, N ranks of a command on one machine.
//!
//! Every wait has a timeout, and its error names the ranks that did not
//! arrive. The frame format is in `docs/distributed.md`.
#![warn(missing_docs)]

mod env;
mod error;
mod group;
pub mod launch;
mod nonce;
mod wire;

pub use env::{EnvSource, RankEnv};
pub use error::DistError;
pub use group::ProcessGroup;
pub use nonce::{fresh_nonce, job_nonce, NONCE_VAR};
