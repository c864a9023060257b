use super::{Batch, DataLoader, LoaderError, ReadError};
use crate::plan::{OrderKind, PlanSpec, RankStream};
use crossbeam_channel::{bounded, Receiver};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

type Item = Result<Batch, LoaderError>;

struct Worker {
    name: String,
    rx: Option<Receiver<Item>>,
    handle: Option<JoinHandle<()>>,
}

/// Iterator over one epoch's batches (endless for infinite loaders).
pub struct BatchIter {
    shared: Arc<Shared>,
    next: u64,
    end: Option<u64>,
    workers: Vec<Worker>,
    stop: Arc<AtomicBool>,
    failed: bool,
    /// Values yielded since the reader last released its pages.
    since_release: usize,
    /// An error met while starting the epoch, yielded first.
    start_error: Option<LoaderError>,
}

/// Values (i64) yielded between two `release_memory` calls: 8 M values is
/// 64 MB of batches, about 16 MB of u16 cache pages.
const RELEASE_EVERY: usize = 8 << 20;

struct Shared {
    loader: DataLoader,
    stream: RankStream,
}

impl Shared {
    /// Builds batch `b`: steps `[b*B, (b+1)*B)` of the rank's stream.
    fn build(&self, b: u64) -> Option<Item> {
        let bs = self.loader.options.batch_size as u64;
        let mut samples = Vec::with_capacity(bs as usize);
        self.stream.fill(b * bs, (b + 1) * bs, &mut samples);
        if samples.is_empty() || (self.loader.options.drop_last && (samples.len() as u64) < bs) {
            return None;
        }
        let wrap = |e: ReadError| LoaderError::Batch {
            loader: self.loader.name.clone(),
            batch: b,
            source: e,
        };
        let result = self
            .loader
            .reader
            .read_batch(&samples, self.loader.collate.as_ref())
            .map(|mut batch| {
                batch.samples = samples;
                batch
            })
            .map_err(wrap);
        Some(result)
    }
}

impl BatchIter {
    pub(super) fn new(loader: DataLoader, plan: PlanSpec, epoch: u64) -> Self {
        let end = plan.num_batches(loader.options.batch_size as u64, loader.options.drop_last);
        let n = loader.options.num_workers;
        let prefetch = loader.options.prefetch.max(1);
        let stop = Arc::new(AtomicBool::new(false));
        let stream = match plan.stream(epoch) {
            Ok(stream) => stream,
            Err(source) => {
                // Unreachable through `DataLoader::new`, which validates the
                // plan; reported rather than panicking all the same.
                let start_error = LoaderError::Plan {
                    loader: loader.name.clone(),
                    source,
                };
                let stream = PlanSpec {
                    num_samples: 0,
                    order: OrderKind::Sequential,
                    world_size: 1,
                    rank: 0,
                    infinite: false,
                    start: 0,
                    ..plan
                }
                .stream(epoch)
                .unwrap_or_else(|_| unreachable!("an empty sequential plan is valid"));
                return Self {
                    shared: Arc::new(Shared { loader, stream }),
                    next: 0,
                    end: Some(0),
                    workers: Vec::new(),
                    stop,
                    failed: false,
                    since_release: 0,
                    start_error: Some(start_error),
                };
            }
        };
        let shared = Arc::new(Shared { loader, stream });
        let mut workers = Vec::with_capacity(n);
        let mut start_error = None;
        for w in 0..n {
            let (tx, rx) = bounded::<Item>(prefetch);
            let (shared_w, stop_w) = (shared.clone(), stop.clone());
            let name = format!("xlm-{}-worker-{w}", shared.loader.name);
            let spawned = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let mut b = w as u64;
                    while !stop_w.load(Ordering::Relaxed) && end.is_none_or(|e| b < e) {
                        let Some(item) = shared_w.build(b) else { break };
                        let is_err = item.is_err();
                        if tx.send(item).is_err() || is_err {
                            break;
                        }
                        b += n as u64;
                    }
                });
            match spawned {
                Ok(handle) => workers.push(Worker {
                    name,
                    rx: Some(rx),
                    handle: Some(handle),
                }),
                Err(e) => {
                    start_error = Some(LoaderError::Spawn {
                        loader: shared.loader.name.clone(),
                        worker: name,
                        reason: e.to_string(),
                    });
                    break;
                }
            }
        }
        Self {
            shared,
            next: 0,
            end,
            workers,
            stop,
            failed: false,
            since_release: 0,
            start_error,
        }
    }

    /// Index of the next batch this iterator will yield.
    pub fn position(&self) -> u64 {
        self.next
    }

    fn recv_from_worker(&mut self, b: u64) -> Option<Item> {
        let w = (b % self.workers.len() as u64) as usize;
        let rx = self.workers[w].rx.as_ref()?;
        match rx.recv() {
            Ok(item) => Some(item),
            Err(_) => {
                // The worker hung up: normal at the end of a finite epoch, a
                // panic otherwise.
                let worker = &mut self.workers[w];
                let reason = match worker.handle.take().map(|h| h.join()) {
                    Some(Err(p)) => p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "unknown panic".into()),
                    _ => return None,
                };
                Some(Err(LoaderError::WorkerDied {
                    loader: self.shared.loader.name.clone(),
                    worker: worker.name.clone(),
                    batch: b,
                    reason,
                }))
            }
        }
    }
}

impl Iterator for BatchIter {
    type Item = Result<Batch, LoaderError>;

    fn next(&mut self) -> Option<Item> {
        if let Some(e) = self.start_error.take() {
            self.failed = true;
            return Some(Err(e));
        }
        if self.failed || self.end.is_some_and(|e| self.next >= e) {
            return None;
        }
        let b = self.next;
        let item = if self.workers.is_empty() {
            self.shared.build(b)
        } else {
            self.recv_from_worker(b)
        }?;
        self.failed = item.is_err();
        if let Ok(batch) = &item {
            let mut p = self
                .shared
                .loader
                .progress
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p.steps += batch.samples.len() as u64;
            self.since_release += batch.num_values();
            // Only streams that move through the data release what they
            // passed: random access (a permuted order) maps the pages back
            // at once, so releasing would cost refaults and save nothing.
            let sequential = !matches!(self.shared.stream.spec().order, OrderKind::Permuted);
            if sequential && self.since_release >= RELEASE_EVERY {
                self.since_release = 0;
                self.shared.loader.reader.release_memory();
            }
        }
        self.next += 1;
        Some(item)
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in &mut self.workers {
            // Dropping the receiver unblocks a worker waiting to send.
            w.rx.take();
        }
        for w in &mut self.workers {
            if let Some(h) = w.handle.take() {
                let _ = h.join();
            }
        }
    }
}
