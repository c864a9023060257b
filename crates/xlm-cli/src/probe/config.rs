use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;
use xlm::manager::{DatasetManagerConfig, Stage};
use xlm::tokenizer::TokenizerConfig;

/// The probe's `--config-json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// The DatasetManager config.
    pub dsm_kwargs: DatasetManagerConfig,
    /// Arguments of setup.
    #[serde(default)]
    pub setup_kwargs: ProbeSetup,
    /// What to iterate.
    #[serde(default)]
    pub run: ProbeRun,
    /// The tokenizer (default: SimpleSpaceTokenizer over the test vocabulary).
    #[serde(default)]
    pub tokenizer: TokenizerConfig,
}

/// `setup_kwargs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSetup {
    /// Sequence length for packing and padding collators.
    #[serde(default)]
    pub block_size: Option<usize>,
    /// The stage to set up (default fit).
    #[serde(default = "fit")]
    pub stage: Stage,
    /// Cache directory (default `<result_dir>/cache`).
    #[serde(default)]
    pub manual_cache_dir: Option<PathBuf>,
}

fn fit() -> Stage {
    Stage::Fit
}

impl Default for ProbeSetup {
    fn default() -> Self {
        Self {
            block_size: None,
            stage: Stage::Fit,
            manual_cache_dir: None,
        }
    }
}

/// `run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeRun {
    /// Epochs to iterate (default 1).
    #[serde(default = "one")]
    pub num_epochs: u64,
    /// Stop each epoch after this many batches (needed for infinite loaders).
    #[serde(default)]
    pub max_batches_per_epoch: Option<u64>,
    /// Call set_epoch(e) before epoch e (default true).
    #[serde(default = "yes")]
    pub set_epoch_each_epoch: bool,
    /// Overrides `dsm_kwargs.shuffle_seed`.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Loader type (default `train`).
    #[serde(default = "train")]
    pub loader: String,
    /// Timeout of collectives other than the barrier after `prepare_data`,
    /// in seconds (default 60). The probe runs no other collective today;
    /// the field is kept for configs and for collectives to come.
    #[serde(default = "sixty")]
    pub timeout_s: f64,
    /// Timeout for every rank to join the process group, in seconds (default 60).
    #[serde(default = "sixty")]
    pub rendezvous_timeout_s: f64,
    /// Timeout of the barrier after `prepare_data`, where the other ranks
    /// wait for local rank 0 to prepare the cache, in seconds (default 1800,
    /// torch's default process-group timeout).
    #[serde(default = "half_hour")]
    pub prepare_timeout_s: f64,
    /// Fault injection, to test failure handling.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Stop after this many batches in all (counted across epochs).
    #[serde(default)]
    pub stop_after_batches: Option<u64>,
    /// Where rank 0 writes the loader state when it stops (after the last batch it yielded).
    #[serde(default)]
    pub state_out: Option<PathBuf>,
    /// A loader state file to restore before iterating; epochs run from its epoch.
    #[serde(default)]
    pub resume_from: Option<PathBuf>,
}

fn one() -> u64 {
    1
}
fn yes() -> bool {
    true
}
fn train() -> String {
    "train".into()
}
fn sixty() -> f64 {
    60.0
}
fn half_hour() -> f64 {
    1800.0
}

/// Longest timeout a probe config may set: 365 days.
const MAX_TIMEOUT_S: f64 = 365.0 * 24.0 * 3600.0;

/// The probe's timeouts, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Every rank joins the process group (`run.rendezvous_timeout_s`).
    pub rendezvous: Duration,
    /// Collectives other than the one below (`run.timeout_s`).
    pub collective: Duration,
    /// The barrier after `prepare_data` (`run.prepare_timeout_s`).
    pub prepare: Duration,
}

fn seconds(field: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v <= MAX_TIMEOUT_S {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "run.{field} must be a number of seconds more than 0 and at most {MAX_TIMEOUT_S}, not {v}"
        ))
    }
}

impl ProbeRun {
    /// The timeouts; a value that is not a positive, finite number of
    /// seconds (at most 365 days) is an error naming its field.
    pub fn timeouts(&self) -> Result<Timeouts, String> {
        Ok(Timeouts {
            rendezvous: seconds("rendezvous_timeout_s", self.rendezvous_timeout_s)?,
            collective: seconds("timeout_s", self.timeout_s)?,
            prepare: seconds("prepare_timeout_s", self.prepare_timeout_s)?,
        })
    }
}

impl Default for ProbeRun {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

/// A fault to inject on one rank (for testing how failures surface).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The rank that misbehaves.
    pub rank: usize,
    /// How.
    pub kind: FaultKind,
    /// Seconds to stall for `stall_before_barrier` and `stall_in_prepare` (default 5).
    #[serde(default)]
    pub stall_s: Option<f64>,
}

/// Kinds of injected faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Panic after joining the group (the result file records it).
    Panic,
    /// Kill itself with SIGKILL (no result file).
    Sigkill,
    /// Sleep before the post-prepare barrier (the others time out).
    StallBeforeBarrier,
    /// Sleep inside the prepare step, as a slow `prepare_data` would (only
    /// on a local rank 0, which prepares; elsewhere nothing happens).
    StallInPrepare,
}
