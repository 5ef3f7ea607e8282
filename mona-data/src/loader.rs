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
//!
//! **Aspect-ratio groups** (mmdet 2.x `GroupSampler`, which mmdet's `build_dataloader` uses
//! whenever it shuffles). When shuffling a dataset that gives [`Dataset::group_flags`], the
//! order is [`group_epoch_order`] instead of a plain permutation: every batch holds samples of
//! one group only (all landscape or all portrait), groups are padded with repeated samples to
//! a multiple of `batch_size`, so an epoch has `Σ_g ⌈n_g / batch_size⌉` batches, all full
//! (`drop_last` changes nothing then). The order is still a function of `(seed, epoch)`
//! alone, so resuming is unaffected.
//!
//! **Several devices** ([`DataLoader::with_devices`]`(W)`, the replicas of `--gpus W` or the
//! processes of a distributed run; device `r` trains batches `r`, `r + W`, ...). As mmcv's
//! `DistributedSampler`, the epoch's order is padded with its own first samples to a
//! multiple of `W` so that no sample is left out and every device gets `⌈n / W⌉`; the
//! batches of the last iteration are then shorter, the same length on every device. Grouped,
//! as mmdet's `DistributedGroupSampler`: each group is padded by repeating its shuffled
//! samples to a multiple of `W · batch_size`, the batches shuffled, and device `r` takes the
//! `r`-th contiguous run of them. One device keeps the one-device orders above.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rand::Rng;
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
    /// The dataset's group flags when shuffling (mmdet uses `GroupSampler` then).
    group_flags: Option<Arc<[u8]>>,
    /// Devices that take the batches in turn (mmcv's distributed samplers when above 1).
    devices: usize,
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
            .field("grouped", &self.group_flags.is_some())
            .field("devices", &self.devices)
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

/// mmdet 2.x `GroupSampler.__iter__` for one epoch, seeded by `(seed, epoch)`: for each group
/// (flag value, ascending) with samples, shuffle its indices and pad them with indices drawn
/// uniformly with replacement from the group (`np.random.choice`) up to a multiple of
/// `samples_per_gpu`; concatenate the groups, cut into batches of `samples_per_gpu` and shuffle
/// the order of the batches. The length is `Σ_g ⌈n_g / samples_per_gpu⌉ · samples_per_gpu`.
/// (numpy's generator is not reproduced, only the construction; `samples_per_gpu` of 0 gives
/// an empty order.)
pub fn group_epoch_order(
    flags: &[u8],
    samples_per_gpu: usize,
    seed: u64,
    epoch: u64,
) -> Vec<usize> {
    if samples_per_gpu == 0 {
        return Vec::new();
    }
    let mut rng = order_rng(seed, epoch);
    let groups = group_members(flags);
    let mut all = Vec::with_capacity(group_epoch_size(flags, samples_per_gpu));
    for mut group in groups {
        group.shuffle(&mut rng);
        let n = group.len();
        let extra = n.div_ceil(samples_per_gpu) * samples_per_gpu - n;
        for _ in 0..extra {
            let k = rng.random_range(0..n);
            group.push(group[k]);
        }
        all.extend(group);
    }
    let mut batches: Vec<usize> = (0..all.len() / samples_per_gpu).collect();
    batches.shuffle(&mut rng);
    batches
        .into_iter()
        .flat_map(|b| {
            all[b * samples_per_gpu..(b + 1) * samples_per_gpu]
                .iter()
                .copied()
        })
        .collect()
}

/// mmdet 2.x `DistributedGroupSampler.__iter__` for one epoch of `devices` replicas, seeded
/// by `(seed, epoch)`, laid out for batches taken in turn (device `r` trains batches `r`,
/// `r + devices`, ...): each group (flag value, ascending) shuffled and padded by repeating
/// its shuffled indices up to a multiple of `samples_per_gpu · devices`; the groups
/// concatenated and cut into batches of `samples_per_gpu`, whose order is shuffled; device
/// `r` takes the `r`-th of `devices` equal contiguous runs of batches (mmdet's `offset`).
/// (torch's generator is not reproduced, only the construction.)
pub fn distributed_group_epoch_order(
    flags: &[u8],
    samples_per_gpu: usize,
    devices: usize,
    seed: u64,
    epoch: u64,
) -> Vec<usize> {
    let devices = devices.max(1);
    let per_step = samples_per_gpu * devices;
    if per_step == 0 {
        return Vec::new();
    }
    let mut rng = order_rng(seed, epoch);
    let groups = group_members(flags);
    let mut all = Vec::new();
    for mut group in groups {
        group.shuffle(&mut rng);
        let n = group.len();
        let padded = n.div_ceil(per_step) * per_step;
        all.extend((0..padded).map(|k| group[k % n]));
    }
    let mut chunks: Vec<usize> = (0..all.len() / samples_per_gpu).collect();
    chunks.shuffle(&mut rng);
    // device r's run of chunks is chunks[r·per_device ..]; batch W·i + r is its i-th
    let per_device = chunks.len() / devices;
    (0..chunks.len())
        .flat_map(|g| {
            let c = chunks[(g % devices) * per_device + g / devices];
            all[c * samples_per_gpu..(c + 1) * samples_per_gpu]
                .iter()
                .copied()
        })
        .collect()
}

/// The indices of each group with samples, by ascending flag value.
fn group_members(flags: &[u8]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); 256];
    for (i, &f) in flags.iter().enumerate() {
        groups[usize::from(f)].push(i);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

/// mmcv `DistributedSampler`'s padding: `order` extended with its own first samples (round
/// and round again when shorter than the padding) to a multiple of `devices`.
fn pad_to_devices(mut order: Vec<usize>, devices: usize) -> Vec<usize> {
    let n = order.len();
    if n == 0 {
        return order;
    }
    let total = n.div_ceil(devices) * devices;
    for k in n..total {
        let repeated = order[k % n];
        order.push(repeated);
    }
    order
}

/// mmdet `GroupSampler.num_samples`: `Σ_g ⌈n_g / samples_per_gpu⌉ · samples_per_gpu`; with
/// `samples_per_gpu · W` in its place, `DistributedGroupSampler.total_size`.
fn group_epoch_size(flags: &[u8], samples_per_gpu: usize) -> usize {
    let mut sizes = [0usize; 256];
    for &f in flags {
        sizes[usize::from(f)] += 1;
    }
    sizes
        .iter()
        .map(|&n| n.div_ceil(samples_per_gpu) * samples_per_gpu)
        .sum()
}

impl DataLoader {
    /// A loader; `batch_size` must be at least 1. With `shuffle` and a dataset that gives
    /// [`Dataset::group_flags`], batches are grouped (mmdet's `GroupSampler`); flags whose
    /// number differs from the dataset's length are an error.
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
        let group_flags = if shuffle { dataset.group_flags() } else { None };
        if let Some(flags) = &group_flags
            && flags.len() != dataset.len()
        {
            return Err(DataError::Loader(format!(
                "the dataset gives {} group flags for {} samples",
                flags.len(),
                dataset.len()
            )));
        }
        Ok(DataLoader {
            dataset,
            batch_size,
            shuffle,
            seed,
            num_workers,
            drop_last,
            group_flags: group_flags.map(Arc::from),
            devices: 1,
        })
    }

    /// The loader of `devices` devices taking its batches in turn (device `r` batches `r`,
    /// `r + devices`, ...), padded as mmcv's distributed samplers: see the module's notes.
    /// One device (the default) changes nothing.
    pub fn with_devices(mut self, devices: usize) -> Self {
        self.devices = devices.max(1);
        self
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Whether batches are grouped by aspect ratio (mmdet's `GroupSampler`).
    pub fn is_grouped(&self) -> bool {
        self.group_flags.is_some()
    }

    /// The sample indices of epoch `epoch`, in order; batches are consecutive runs of
    /// `batch_size` of them.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let (b, w) = (self.batch_size, self.devices);
        match &self.group_flags {
            Some(flags) if w == 1 => group_epoch_order(flags, b, self.seed, epoch),
            Some(flags) => distributed_group_epoch_order(flags, b, w, self.seed, epoch),
            None => pad_to_devices(
                epoch_order(self.dataset.len(), self.shuffle, self.seed, epoch),
                w,
            ),
        }
    }

    /// Batches per epoch, of all devices together. One device: `len / batch_size`, rounded up
    /// unless `drop_last`. `W` devices: `W` times the batches of each device's `⌈len / W⌉`
    /// samples. Grouped: `Σ_g ⌈n_g / (W · batch_size)⌉ · W` (every batch full).
    pub fn epoch_len(&self) -> usize {
        let (b, w) = (self.batch_size, self.devices);
        if let Some(flags) = &self.group_flags {
            return group_epoch_size(flags, b * w) / b;
        }
        let per_device = self.dataset.len().div_ceil(w);
        let iterations = if self.drop_last {
            per_device / b
        } else {
            per_device.div_ceil(b)
        };
        iterations * w
    }

    /// The batches of epoch `epoch`, starting at batch `start_batch` (for resuming; a start at
    /// or past [`epoch_len`](Self::epoch_len) yields nothing).
    pub fn iter_epoch(&self, epoch: u64, start_batch: usize) -> EpochIter {
        self.iter_epoch_strided(epoch, start_batch, 1)
    }

    /// Every `stride`-th batch of epoch `epoch` from batch `first` on: `first`,
    /// `first + stride`, ... (the batches one of `stride` processes trains). Only those
    /// batches are loaded; each is the batch [`iter_epoch`](Self::iter_epoch) gives at its
    /// index.
    pub fn iter_epoch_strided(&self, epoch: u64, first: usize, stride: usize) -> EpochIter {
        let stride = stride.max(1);
        let plan = Arc::new(EpochPlan {
            dataset: Arc::clone(&self.dataset),
            order: self.order(epoch),
            batch_size: self.batch_size,
            devices: self.devices,
            seed: self.seed,
            epoch,
        });
        let end = self.epoch_len();
        let start = first.min(end);
        // No more threads than batches; worker w builds the batches at positions w, w + n,
        // ... of this iterator (batch start + (w + k·n)·stride).
        let n = self.num_workers.min((end - start).div_ceil(stride));
        let workers = (0..n)
            .map(|w| spawn_worker(Arc::clone(&plan), w, start + w * stride, end, n * stride))
            .collect();
        EpochIter {
            plan,
            next: start,
            start,
            end,
            stride,
            workers,
        }
    }
}

/// Everything a worker needs to build any batch of one epoch.
struct EpochPlan {
    dataset: Arc<dyn Dataset>,
    order: Vec<usize>,
    batch_size: usize,
    devices: usize,
    seed: u64,
    epoch: u64,
}

impl EpochPlan {
    /// The positions of batch `b` in the order: `b · batch_size ..` for the full batches;
    /// the last iteration's shorter batches split what is left equally between the devices
    /// (the end of each device's share of mmcv's distributed sampler).
    fn span(&self, b: usize) -> std::ops::Range<usize> {
        let (size, w) = (self.batch_size, self.devices);
        let per_device = self.order.len() / w;
        let full_iterations = per_device / size;
        let (i, r) = (b / w, b % w);
        if i < full_iterations {
            b * size..(b + 1) * size
        } else {
            let short = per_device - full_iterations * size;
            let first = full_iterations * w * size + r * short;
            first..first + short
        }
    }

    /// Batch `b`: the positions of [`span`](Self::span), each loaded with its own generator.
    fn batch(&self, b: usize) -> BatchResult {
        self.span(b)
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
    /// Batches advanced per item (1, or the process count of a distributed run).
    stride: usize,
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
        self.next += self.stride;
        if self.workers.is_empty() {
            return Some(self.plan.batch(b));
        }
        let w = ((b - self.start) / self.stride) % self.workers.len();
        Some(self.workers[w].receiver.recv().unwrap_or_else(|_| {
            Err(DataError::Worker {
                worker: w,
                batch: b,
                message: "the worker stopped before delivering this batch".to_string(),
            })
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.saturating_sub(self.next).div_ceil(self.stride);
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
