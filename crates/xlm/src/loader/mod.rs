//! The data loader: turns a rank's planned sample stream into batches.
//!
//! Batch `b` of an epoch holds steps `[b * batch_size, (b + 1) * batch_size)`
//! of the rank's [`RankStream`](crate::plan::RankStream). With
//! `num_workers = n > 0`, worker thread `w` builds batches `b ≡ w (mod n)`
//! into its own bounded channel (`prefetch` deep) and the iterator takes
//! them round-robin, so batches come out in the same order whichever worker
//! finishes first. A worker's error arrives as an `Err` item; a worker that
//! panics is reported by name; dropping the iterator stops and joins the
//! workers.

mod iter;
mod state;

pub use crate::data::{Array2, Batch};
pub use iter::BatchIter;
pub use state::{LoaderState, ResumeError, STATE_FORMAT, STATE_VERSION};

use crate::collate::Collate;
use crate::data::Example;
use crate::plan::PlanSpec;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// An error of a [`SampleReader`] or collator, kept with its type: callers
/// that need it downcast (`err.downcast_ref::<CacheError>()`).
pub type ReadError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Failures while producing batches.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoaderError {
    /// Reading or collating batch `batch` failed.
    #[error("{loader} loader, batch {batch}: {source}")]
    Batch {
        /// The loader's name (`train`, `val`, ...).
        loader: String,
        /// The batch index in the epoch.
        batch: u64,
        /// What the reader or collator reported.
        #[source]
        source: ReadError,
    },
    /// A worker thread panicked.
    #[error("{loader} loader: worker thread `{worker}` stopped without sending batch {batch} (it panicked: {reason})")]
    WorkerDied {
        /// The loader's name.
        loader: String,
        /// The worker thread's name.
        worker: String,
        /// The batch it owed.
        batch: u64,
        /// The panic message.
        reason: String,
    },
    /// A worker thread could not be started.
    #[error("{loader} loader: cannot start worker thread `{worker}`: {reason}")]
    Spawn {
        /// The loader's name.
        loader: String,
        /// The worker thread's name.
        worker: String,
        /// The OS error.
        reason: String,
    },
    /// The plan cannot be followed (world size, rank, shards).
    #[error("{loader} loader: {source}")]
    Plan {
        /// The loader's name.
        loader: String,
        /// What is wrong with the plan.
        #[source]
        source: crate::plan::PlanError,
    },
    /// An option is out of range.
    #[error("{key} = {value} is invalid: {reason}")]
    Invalid {
        /// The option (`batch_size`, `num_workers`, `prefetch_factor`, `world_size`, `rank`).
        key: &'static str,
        /// Its value.
        value: u64,
        /// The accepted range.
        reason: &'static str,
    },
}

/// Reads samples of the plan's sample space.
pub trait SampleReader: Send + Sync {
    /// The example of sample `sample`.
    fn read(&self, sample: u64) -> Result<Example, ReadError>;

    /// The batch of `samples` (in order) collated by `collate`. The default
    /// reads each example and collates them; readers override it to write
    /// straight into the batch buffers (`samples` is filled in by the loader).
    fn read_batch(&self, samples: &[u64], collate: &dyn Collate) -> Result<Batch, ReadError> {
        collate_examples(self, samples, collate)
    }

    /// Lets go of memory the reader can get back on demand (mapped pages).
    /// The loader calls it every few tens of MB read, so a rank's resident
    /// memory does not grow with the dataset.
    fn release_memory(&self) {}
}

/// Reads each of `samples` as an example and collates them: the general
/// path of [`SampleReader::read_batch`].
pub fn collate_examples<R: SampleReader + ?Sized>(
    reader: &R,
    samples: &[u64],
    collate: &dyn Collate,
) -> Result<Batch, ReadError> {
    let examples = samples
        .iter()
        .map(|&s| reader.read(s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(collate.collate(&examples)?)
}

/// Largest epoch a restored state may name (2^48: far beyond any run).
pub const MAX_EPOCH: u64 = 1 << 48;

/// Largest position a restored state of an endless stream may name (2^62).
pub const MAX_CONSUMED: u64 = 1 << 62;

/// Most worker threads one loader may start.
pub const MAX_WORKERS: usize = 1024;
/// Most batches one worker may hold ready.
pub const MAX_PREFETCH: usize = 1 << 16;

/// Batch size, drop_last, worker threads and prefetch depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderOptions {
    /// Examples per batch (>= 1).
    pub batch_size: usize,
    /// Drop the last partial batch of an epoch.
    pub drop_last: bool,
    /// Worker threads (0: batches are built on the calling thread).
    pub num_workers: usize,
    /// Batches each worker may have ready ahead of the consumer.
    pub prefetch: usize,
}

impl LoaderOptions {
    /// Checks every option's range; the error names the option.
    pub fn validate(&self) -> Result<(), LoaderError> {
        let invalid = |key, value: usize, reason| {
            Err(LoaderError::Invalid {
                key,
                value: value as u64,
                reason,
            })
        };
        if self.batch_size == 0 {
            return invalid("batch_size", 0, "a batch holds at least one example");
        }
        if self.num_workers > MAX_WORKERS {
            return invalid(
                "num_workers",
                self.num_workers,
                "at most 1024 worker threads per loader",
            );
        }
        if self.prefetch == 0 || self.prefetch > MAX_PREFETCH {
            return invalid(
                "prefetch_factor",
                self.prefetch,
                "each worker prefetches between 1 and 65536 batches",
            );
        }
        Ok(())
    }
}

/// Fingerprints a loader's state is checked against on restore.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fingerprints {
    /// Of the data.
    pub dataset: String,
    /// Of the pipeline shaping the sample space and its order.
    pub pipeline: String,
}

/// Where the loader is: the epoch of the last `iter()`, the global position
/// it started at, and the steps (samples per rank) yielded since.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    pub epoch: u64,
    pub start: u64,
    pub steps: u64,
    /// A restored position, applied by the next `iter()` of that epoch.
    pub resume: Option<(u64, u64)>,
}

/// An iterable over batches, one epoch per call to [`DataLoader::iter`].
///
/// The epoch is shared with the `DatasetManager` that made the loader, so
/// `set_epoch` on either changes the order of the next `iter()`. The loader
/// tracks how far iteration got: [`DataLoader::state`] after any batch,
/// [`DataLoader::restore`] to continue from there (see [`LoaderState`]).
#[derive(Clone)]
pub struct DataLoader {
    pub(crate) name: String,
    pub(crate) reader: Arc<dyn SampleReader>,
    pub(crate) collate: Arc<dyn Collate>,
    pub(crate) plan: PlanSpec,
    pub(crate) options: LoaderOptions,
    pub(crate) epoch: Arc<AtomicU64>,
    pub(crate) fingerprints: Fingerprints,
    pub(crate) progress: Arc<Mutex<Progress>>,
}

impl std::fmt::Debug for DataLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("name", &self.name)
            .field("plan", &self.plan)
            .field("options", &self.options)
            .field("epoch", &self.epoch())
            .finish()
    }
}

impl DataLoader {
    /// A loader over `reader` following `plan`; fails when an option or
    /// the plan is out of range (the error names the key).
    pub fn new(
        name: impl Into<String>,
        reader: Arc<dyn SampleReader>,
        collate: Arc<dyn Collate>,
        plan: PlanSpec,
        options: LoaderOptions,
        epoch: Arc<AtomicU64>,
    ) -> Result<Self, LoaderError> {
        let name = name.into();
        options.validate()?;
        plan.validate().map_err(|source| LoaderError::Plan {
            loader: name.clone(),
            source,
        })?;
        Ok(Self {
            name,
            reader,
            collate,
            plan,
            options,
            epoch,
            fingerprints: Fingerprints::default(),
            progress: Arc::new(Mutex::new(Progress::default())),
        })
    }

    /// Sets the fingerprints that states are checked against.
    pub fn with_fingerprints(mut self, fingerprints: Fingerprints) -> Self {
        self.fingerprints = fingerprints;
        self
    }

    /// The position after the last batch yielded, as a saveable state.
    /// Equal on every rank: save it from rank 0.
    pub fn state(&self) -> LoaderState {
        let p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        LoaderState {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            dataset_fingerprint: self.fingerprints.dataset.clone(),
            pipeline_fingerprint: self.fingerprints.pipeline.clone(),
            seed: self.plan.seed,
            epoch: p.resume.map_or(p.epoch, |(e, _)| e),
            consumed: p.resume.map_or(
                p.start
                    .saturating_add(p.steps.saturating_mul(self.plan.world_size)),
                |(_, c)| c,
            ),
            samples_per_step: self.options.batch_size as u64 * self.plan.world_size,
            world_size: self.plan.world_size,
            num_workers: self.options.num_workers,
        }
    }

    /// Continues from `state`: sets the epoch to the saved one, and the next
    /// `iter()` of that epoch starts where the saved run stopped. Works on a
    /// different world size or worker count (elastic resume) as long as the
    /// samples per step (batch_size x world_size) stay the same.
    pub fn restore(&self, state: &LoaderState) -> Result<(), ResumeError> {
        if state.version != STATE_VERSION {
            return Err(ResumeError::Version {
                found: u64::from(state.version),
                supported: STATE_VERSION,
            });
        }
        if state.format != STATE_FORMAT {
            return Err(ResumeError::Corrupt(format!(
                "`format` is {:?}",
                state.format
            )));
        }
        if state.dataset_fingerprint != self.fingerprints.dataset {
            return Err(ResumeError::Dataset {
                saved: state.dataset_fingerprint.clone(),
                current: self.fingerprints.dataset.clone(),
            });
        }
        if state.pipeline_fingerprint != self.fingerprints.pipeline {
            return Err(ResumeError::Pipeline {
                saved: state.pipeline_fingerprint.clone(),
                current: self.fingerprints.pipeline.clone(),
            });
        }
        if state.seed != self.plan.seed {
            return Err(ResumeError::Seed {
                saved: state.seed,
                current: self.plan.seed,
            });
        }
        let (b, w) = (self.options.batch_size as u64, self.plan.world_size);
        if state.samples_per_step != b * w {
            return Err(ResumeError::SamplesPerStep {
                saved: state.samples_per_step,
                saved_world: state.world_size,
                current: b * w,
                batch_size: b,
                world: w,
            });
        }
        // The saved world shared the saved samples per step (batch >= 1 per rank).
        if state.world_size == 0
            || state.world_size > state.samples_per_step
            || state.samples_per_step % state.world_size != 0
        {
            return Err(ResumeError::Corrupt(format!(
                "`world_size` {} does not divide `samples_per_step` {}",
                state.world_size, state.samples_per_step
            )));
        }
        if state.epoch > MAX_EPOCH {
            return Err(ResumeError::Corrupt(format!(
                "`epoch` {} is beyond any run (at most {MAX_EPOCH})",
                state.epoch
            )));
        }
        let s = self.plan.num_samples;
        if self.plan.infinite {
            // Endless streams may run past S; keep positions far from 2^64.
            if state.consumed > MAX_CONSUMED {
                return Err(ResumeError::Corrupt(format!(
                    "`consumed` {} is beyond any run (at most {MAX_CONSUMED})",
                    state.consumed
                )));
            }
        } else {
            // Padding can carry the last rank past S by at most W-1 positions.
            let total = s.saturating_add(state.world_size - 1);
            if state.consumed > total {
                return Err(ResumeError::PastEnd {
                    epoch: state.epoch,
                    consumed: state.consumed,
                    total,
                });
            }
        }
        let (epoch, consumed) = (state.epoch, state.consumed);
        self.epoch.store(epoch, Ordering::SeqCst);
        let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
        p.resume = Some((epoch, consumed));
        Ok(())
    }

    /// The plan (sample space, order, rank split) this loader follows.
    pub fn plan(&self) -> &PlanSpec {
        &self.plan
    }

    /// Batch size, workers, drop_last.
    pub fn options(&self) -> &LoaderOptions {
        &self.options
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Sets the epoch the next `iter()` uses (changes shuffled orders).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// Batches per full epoch on this rank (`None`: infinite). Equal on every rank.
    pub fn num_batches(&self) -> Option<u64> {
        self.plan
            .num_batches(self.options.batch_size as u64, self.options.drop_last)
    }

    /// Iterates the current epoch (from the restored position, if one was
    /// restored for this epoch). A restored position stays pending while an
    /// earlier epoch is iterated and is dropped once a later one is. The
    /// loader's [`state`](Self::state) follows the most recent `iter()`.
    pub fn iter(&self) -> BatchIter {
        let epoch = self.epoch();
        let start = {
            let mut p = self.progress.lock().unwrap_or_else(|e| e.into_inner());
            let (start, pending) = match p.resume {
                Some((e, consumed)) if e == epoch => (consumed, None),
                Some((e, consumed)) if e > epoch => (0, Some((e, consumed))),
                _ => (0, None),
            };
            *p = Progress {
                epoch,
                start,
                steps: 0,
                resume: pending,
            };
            start
        };
        let plan = PlanSpec {
            start,
            ..self.plan.clone()
        };
        BatchIter::new(self.clone(), plan, epoch)
    }
}

impl IntoIterator for &DataLoader {
    type Item = Result<Batch, LoaderError>;
    type IntoIter = BatchIter;
    fn into_iter(self) -> BatchIter {
        self.iter()
    }
}
