use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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
    /// Timeout of every collective (barrier, all-gather), in seconds (default 60).
    #[serde(default = "sixty")]
    pub timeout_s: f64,
    /// Timeout for every rank to join the process group, in seconds (default 60).
    #[serde(default = "sixty")]
    pub rendezvous_timeout_s: f64,
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
    /// Seconds to stall for `stall_before_barrier` (default 5).
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
}
