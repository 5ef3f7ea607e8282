//! A deterministic, prefetching data loader.
//!
//! **Determinism.** Epoch `e` visits the samples in the order [`epoch_order`] gives (a
//! permutation seeded by `(seed, e)` when shuffling, index order otherwise). The sample at
//! position `p` of that order is augmented with [`sample_rng`]`(seed, e, p)`. Batches are
//! consecutive runs of `batch_size` positions. Hence a batch's content depends only on
//! `(seed, epoch, batch index)`: not on `num_workers`, thread timing, or where an interrupted
//! epoch was resumed ([`DataLoader::iter_epoch`] with `start_batch`).
//!
//! **Threads.** With `num_workers = 0` batches are built on the caller's thread when asked
//! for. With `n > 0`, worker `w` builds batches `start + w, start + w + n, ...` (PyTorch's
//! round-robin) and hands them over a bounded channel of [`PREFETCH`] batches; the iterator
//! reads the workers in turn, so batches come out in order. Dropping the iterator mid-epoch
//! closes the channels; workers stop after the batch they are building and are joined.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rand::seq::SliceRandom;

use crate::datasets::Dataset;
use crate::error::DataError;
use crate::results::Results;
use crate::rng::{order_rng, sample_rng};

/// Batches each worker may build ahead of the consumer (PyTorch's `prefetch_factor`).
pub const PREFETCH: usize = 2;

/// One batch, or the first error met while building it.
pub type BatchResult = Result<Vec<Results>, DataError>;

/// Serves a dataset in batches, epoch by epoch.
#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    num_workers: usize,
    drop_last: bool,
}

impl std::fmt::Debug for DataLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("len", &self.dataset.len())
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("num_workers", &self.num_workers)
            .field("drop_last", &self.drop_last)
            .finish()
    }
}

/// The order of the samples of epoch `epoch`: a permutation of `0..len` seeded by
/// `(seed, epoch)` when `shuffle`, `0..len` otherwise.
pub fn epoch_order(len: usize, shuffle: bool, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if shuffle {
        order.shuffle(&mut order_rng(seed, epoch));
    }
    order
}

impl DataLoader {
    /// A loader; `batch_size` must be at least 1.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
        num_workers: usize,
        drop_last: bool,
    ) -> Result<Self, DataError> {
        if batch_size == 0 {
            return Err(DataError::Loader(
                "batch_size must be at least 1".to_string(),
            ));
        }
        Ok(DataLoader {
            dataset,
            batch_size,
            shuffle,
            seed,
            num_workers,
            drop_last,
        })
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch: `len / batch_size`, rounded up unless `drop_last`.
    pub fn epoch_len(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The batches of epoch `epoch`, starting at batch `start_batch` (for resuming; a start at
    /// or past [`epoch_len`](Self::epoch_len) yields nothing).
    pub fn iter_epoch(&self, epoch: u64, start_batch: usize) -> EpochIter {
        let plan = Arc::new(EpochPlan {
            dataset: Arc::clone(&self.dataset),
            order: epoch_order(self.dataset.len(), self.shuffle, self.seed, epoch),
            batch_size: self.batch_size,
            seed: self.seed,
            epoch,
        });
        let end = self.epoch_len();
        let start = start_batch.min(end);
        // No more threads than batches; worker w builds batches start + w, start + w + n, ...
        let n = self.num_workers.min(end - start);
        let workers = (0..n)
            .map(|w| spawn_worker(Arc::clone(&plan), w, start + w, end, n))
            .collect();
        EpochIter {
            plan,
            next: start,
            start,
            end,
            workers,
        }
    }
}

/// Everything a worker needs to build any batch of one epoch.
struct EpochPlan {
    dataset: Arc<dyn Dataset>,
    order: Vec<usize>,
    batch_size: usize,
    seed: u64,
    epoch: u64,
}

impl EpochPlan {
    /// Batch `b`: positions `b * batch_size ..`, each loaded with its own generator.
    fn batch(&self, b: usize) -> BatchResult {
        let first = b * self.batch_size;
        let last = (first + self.batch_size).min(self.order.len());
        (first..last)
            .map(|pos| {
                let mut rng = sample_rng(self.seed, self.epoch, pos as u64);
                self.dataset.load(self.order[pos], &mut rng)
            })
            .collect()
    }
}

struct Worker {
    receiver: Receiver<BatchResult>,
    handle: Option<JoinHandle<()>>,
}

fn spawn_worker(plan: Arc<EpochPlan>, id: usize, first: usize, end: usize, step: usize) -> Worker {
    let (sender, receiver): (SyncSender<BatchResult>, _) = sync_channel(PREFETCH);
    let handle = std::thread::Builder::new()
        .name(format!("mona-data-worker-{id}"))
        .spawn(move || {
            for b in (first..end).step_by(step) {
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plan.batch(b)))
                        .unwrap_or_else(|panic| {
                            Err(DataError::Worker {
                                worker: id,
                                batch: b,
                                message: panic_message(panic.as_ref()),
                            })
                        });
                if sender.send(result).is_err() {
                    return; // the iterator was dropped
                }
            }
        });
    match handle {
        Ok(handle) => Worker {
            receiver,
            handle: Some(handle),
        },
        // The OS refused a thread: report it on this worker's first batch.
        Err(e) => {
            let (sender, receiver) = sync_channel(1);
            let _ = sender.send(Err(DataError::Worker {
                worker: id,
                batch: first,
                message: format!("cannot start thread: {e}"),
            }));
            Worker {
                receiver,
                handle: None,
            }
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        format!("panicked: {s}")
    } else if let Some(s) = panic.downcast_ref::<String>() {
        format!("panicked: {s}")
    } else {
        "panicked".to_string()
    }
}

/// The batches of one epoch, in order (see [`DataLoader::iter_epoch`]).
pub struct EpochIter {
    plan: Arc<EpochPlan>,
    next: usize,
    start: usize,
    end: usize,
    workers: Vec<Worker>,
}

impl EpochIter {
    /// Index (within the epoch) of the batch the next call returns.
    pub fn next_batch_index(&self) -> usize {
        self.next
    }
}

impl Iterator for EpochIter {
    type Item = BatchResult;

    fn next(&mut self) -> Option<BatchResult> {
        if self.next >= self.end {
            return None;
        }
        let b = self.next;
        self.next += 1;
        if self.workers.is_empty() {
            return Some(self.plan.batch(b));
        }
        let w = (b - self.start) % self.workers.len();
        Some(self.workers[w].receiver.recv().unwrap_or_else(|_| {
            Err(DataError::Worker {
                worker: w,
                batch: b,
                message: "the worker stopped before delivering this batch".to_string(),
            })
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for EpochIter {}

impl Drop for EpochIter {
    fn drop(&mut self) {
        // Close every channel first so that blocked workers wake up and stop, then join.
        let handles: Vec<_> = self
            .workers
            .iter_mut()
            .filter_map(|w| w.handle.take())
            .collect();
        self.workers.clear();
        for h in handles {
            let _ = h.join();
        }
    }
}
