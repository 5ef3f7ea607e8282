//! The training runner shared by every task (mmcv's EpochBasedRunner / IterBasedRunner with
//! the optimizer, LR, evaluation, checkpoint and logger hooks; see [`hooks`]).
//!
//! A task provides a model implementing [`TrainModel`], a [`BatchSource`] of training batches
//! and an evaluation closure; the runner owns the loop, the optimizer with mmcv's
//! parameter-wise rules, the LR schedule, global gradient clipping, atomic checkpoints that
//! resume bit-exactly (model, optimizer state, position, seeds), and the logs (`train.log`,
//! `log.jsonl`, a progress bar on terminals).

mod accumulate;
mod all_reduce;
mod checkpoint;
mod config;
pub mod custom_hooks;
mod error;
pub mod hooks;
pub(crate) mod logger;
mod options;
mod parallel;
mod paramwise;
mod replica;
mod save_best;
mod step;
mod train;

pub mod optim;
pub mod schedule;

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::Tensor;

use crate::random::Shard;

pub use all_reduce::{HostGrads, grads_from_host, grads_to_host, mean_of, nccl_mean};
pub use checkpoint::{
    CheckpointMeta, TrainingCheckpoint, find_last_checkpoint, read_checkpoint, write_checkpoint,
};
pub use config::{DEFAULT_BATCH_SHARDS, RunnerCfg, RunnerKind, batch_shards};
pub use error::{LossError, TrainError};
pub use logger::{JsonLog, memory_mb};
pub use optim::{Optimizer, OptimizerCfg, OptimizerEntry, Rule, StepStats};
pub use options::{Resume, TrainOptions, TrainSummary};
pub use parallel::{AllReduce, DataParallel, replica_devices};
pub use paramwise::{KeyMult, ParamMults, ParamwiseCfg};
pub use save_best::{Best, Rule as BestRule, SaveBest, SaveBestCfg};
pub use schedule::{LrConfig, LrSchedule, Policy, Progress, ScheduleEntry};
pub use step::{StepValues, forward_backward, may_split};
pub(crate) use train::iter_seed;
pub use train::train;

/// A task's own error (a batch that cannot be collated, an evaluation that fails), typed
/// where it arises and boxed where it crosses into the runner, which only reports it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Named scalar metrics (`accuracy_top-1`, `mIoU`, `bbox_mAP`, ...).
pub type Metrics = BTreeMap<String, f64>;

/// The losses of one forward pass: the total to minimise and its named parts for logging.
pub struct Losses {
    pub total: Tensor<1>,
    pub parts: Vec<(String, Tensor<1>)>,
}

/// A model the runner can train.
pub trait TrainModel: Module + Sized + 'static {
    /// One training batch, already collated.
    type Batch: Send + 'static;
    /// Losses of a batch; `training` enables dropout and DropPath. A batch the model cannot
    /// take is an error naming it, which ends the run with its iteration instead of a panic.
    fn losses(&self, batch: &Self::Batch, training: bool) -> Result<Losses, LossError>;
    /// Whether the parameter `key` (full key, e.g. `backbone.layers.0...`, `head.fc.weight`)
    /// trains: the backbone method's rule plus `frozen_stages` for the backbone, everything
    /// else in necks and heads.
    fn trainable(&self, key: &str) -> bool;
    /// A copy of `batch` on `device`, for data-parallel training (`train --gpus N`); `None`
    /// (the default) when the model does not support it.
    fn batch_to_device(
        _batch: &Self::Batch,
        _device: &burn::tensor::Device,
    ) -> Option<Self::Batch> {
        None
    }
    /// `batch` cut into `parts` consecutive slices of samples (fewer when it has fewer
    /// samples), each with its place in the batch, so that a training step can run them at
    /// the same time (see `runner::step`); `None` (the default) when the loss is not the
    /// mean of per-sample losses (detection's losses normalise over the batch's boxes).
    fn split_batch(
        &self,
        _batch: &Self::Batch,
        _parts: usize,
    ) -> Option<Vec<(Self::Batch, Shard)>> {
        None
    }
}

/// Training batches by epoch, deterministic for a seed so that a resumed run sees the same
/// data as an uninterrupted one.
pub trait BatchSource<B> {
    /// Batches per epoch.
    fn epoch_len(&self) -> usize;
    /// The batches of `epoch` one of `stride` processes trains: `first`, `first + stride`,
    /// ... A loader-backed source builds only those.
    fn iter_epoch_strided<'a>(
        &'a self,
        epoch: usize,
        first: usize,
        stride: usize,
    ) -> Box<dyn Iterator<Item = Result<B, BoxError>> + 'a>
    where
        B: 'a;
    /// The batches of `epoch`, starting at batch `start`.
    fn iter_epoch<'a>(
        &'a self,
        epoch: usize,
        start: usize,
    ) -> Box<dyn Iterator<Item = Result<B, BoxError>> + 'a>
    where
        B: 'a,
    {
        self.iter_epoch_strided(epoch, start, 1)
    }
}
