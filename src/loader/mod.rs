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

mod batch;
mod iter;

pub use batch::{Array2, Batch};
pub use iter::BatchIter;

use crate::data::Example;
use crate::plan::PlanSpec;
use crate::registry::Collate;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// Failures while producing batches.
#[derive(Debug, Error)]
pub enum LoaderError {
    #[error("{loader} loader, batch {batch}: {source}")]
    Batch {
        loader: String,
        batch: u64,
        #[source]
        source: Box<crate::Error>,
    },
    #[error("{loader} loader: worker thread `{worker}` stopped without sending batch {batch} (it panicked: {reason})")]
    WorkerDied {
        loader: String,
        worker: String,
        batch: u64,
        reason: String,
    },
}

/// Reads sample `i` of the plan's sample space as an example.
pub trait SampleReader: Send + Sync {
    /// The example of sample `sample`.
    fn read(&self, sample: u64) -> crate::Result<Example>;
}

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

/// An iterable over batches, one epoch per call to [`DataLoader::iter`].
///
/// The epoch is shared with the `DatasetManager` that made the loader, so
/// `set_epoch` on either changes the order of the next `iter()`.
#[derive(Clone)]
pub struct DataLoader {
    pub(crate) name: String,
    pub(crate) reader: Arc<dyn SampleReader>,
    pub(crate) collate: Arc<dyn Collate>,
    pub(crate) plan: PlanSpec,
    pub(crate) options: LoaderOptions,
    pub(crate) epoch: Arc<AtomicU64>,
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
    /// A loader over `reader` following `plan`.
    pub fn new(
        name: impl Into<String>,
        reader: Arc<dyn SampleReader>,
        collate: Arc<dyn Collate>,
        plan: PlanSpec,
        options: LoaderOptions,
        epoch: Arc<AtomicU64>,
    ) -> Self {
        Self {
            name: name.into(),
            reader,
            collate,
            plan,
            options,
            epoch,
        }
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

    /// Batches per epoch on this rank (`None`: infinite). Equal on every rank.
    pub fn num_batches(&self) -> Option<u64> {
        self.plan
            .num_batches(self.options.batch_size as u64, self.options.drop_last)
    }

    /// Iterates the current epoch.
    pub fn iter(&self) -> BatchIter {
        BatchIter::new(self.clone(), self.epoch())
    }
}

impl IntoIterator for &DataLoader {
    type Item = crate::Result<Batch>;
    type IntoIter = BatchIter;
    fn into_iter(self) -> BatchIter {
        self.iter()
    }
}
