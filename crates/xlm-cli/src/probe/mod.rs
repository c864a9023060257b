//! `xlm probe`: run one rank of a configured pipeline and record what it
//! yields, so a config's per-rank behaviour can be checked before training
//! (and so the multi-process and SLURM test tiers can assert on it).
//!
//! The probe reads its rank from the environment (torchrun or SLURM
//! variables), joins the process group, lets local rank 0 run
//! `prepare_data` while the others wait (up to `run.prepare_timeout_s`),
//! sets up, iterates the configured epochs, and writes
//! `<result_dir>/rank_<RANK>.json` atomically. Any error or panic still
//! writes the file, with `ok: false` and the error text.

mod config;
mod datamodule;
mod fault;
mod result;
mod run;

pub use config::{Fault, FaultKind, ProbeConfig, ProbeRun, ProbeSetup, Timeouts};
pub use result::{read_result, result_path, write_result, EpochRecord, LoaderRecord, RankResult};
pub use run::run_probe;
