use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One epoch as a rank saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number.
    pub epoch: u64,
    /// The `id`s yielded, in order (empty for packed data).
    pub ids: Vec<i64>,
    /// The plan's sample indices yielded, in order.
    pub samples: Vec<u64>,
    /// Shape of each batch's main array (`input_ids`, else `token_ids`, else the first).
    pub batch_shapes: Vec<[usize; 2]>,
    /// `source_ids` rows per batch, when the data has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ids: Option<Vec<Vec<i64>>>,
    /// Number of batches.
    pub num_batches: u64,
}

/// One loader of a datamodule probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoaderRecord {
    /// `train`, `val`, `test` or `predict`.
    pub split: String,
    /// The manager's name in `dataset_managers.<split>`.
    pub name: String,
    /// Batches per epoch the loader announced (None: infinite).
    pub planned_batches_per_epoch: Option<u64>,
    /// What each epoch yielded.
    pub epochs: Vec<EpochRecord>,
}

/// The per-rank result file (`rank_<RANK>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankResult {
    /// Global rank.
    pub rank: usize,
    /// Number of ranks.
    pub world_size: usize,
    /// True when the rank finished without error.
    pub ok: bool,
    /// The error text when not ok.
    pub error: Option<String>,
    /// Iterable mode (None when the config could not be read).
    pub is_iterable_dataset: Option<bool>,
    /// Samples in the set-up sample space.
    #[serde(default)]
    pub num_samples: Option<u64>,
    /// Batches per epoch the loader announced (None: infinite).
    #[serde(default)]
    pub planned_batches_per_epoch: Option<u64>,
    /// What each epoch yielded (single-manager probes).
    pub epochs: Vec<EpochRecord>,
    /// Datamodule probes: every split's loaders, in split then config order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub loaders: Vec<LoaderRecord>,
    /// Datamodule probes: gradient accumulation from `global_batch_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulation_steps: Option<u64>,
    /// Local rank.
    #[serde(default)]
    pub local_rank: usize,
    /// Host name.
    #[serde(default)]
    pub hostname: String,
    /// Seconds from start to the result.
    #[serde(default)]
    pub elapsed_s: f64,
}

impl RankResult {
    /// A failed result.
    pub fn failed(rank: usize, world_size: usize, error: String) -> Self {
        Self {
            rank,
            world_size,
            ok: false,
            error: Some(error),
            is_iterable_dataset: None,
            num_samples: None,
            planned_batches_per_epoch: None,
            loaders: Vec::new(),
            accumulation_steps: None,
            epochs: Vec::new(),
            local_rank: 0,
            hostname: String::new(),
            elapsed_s: 0.0,
        }
    }

    /// Batches per epoch, in epoch order.
    pub fn batch_counts(&self) -> Vec<u64> {
        self.epochs.iter().map(|e| e.num_batches).collect()
    }

    /// The datamodule loader `name` of `split`.
    pub fn loader(&self, split: &str, name: &str) -> Option<&LoaderRecord> {
        self.loaders
            .iter()
            .find(|l| l.split == split && l.name == name)
    }
}

/// `<dir>/rank_<rank>.json`.
pub fn result_path(dir: &Path, rank: usize) -> PathBuf {
    dir.join(format!("rank_{rank}.json"))
}

/// Writes `bytes` to `path` atomically: a hidden temporary file beside it,
/// fsync, rename. Readers see the old file or the new one, never a part.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes the result atomically.
pub fn write_result(dir: &Path, r: &RankResult) -> std::io::Result<PathBuf> {
    let path = result_path(dir, r.rank);
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(r).map_err(std::io::Error::other)?,
    )?;
    Ok(path)
}

/// Reads a result file.
pub fn read_result(path: &Path) -> Result<RankResult, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: not a rank result: {e}", path.display()))
}
