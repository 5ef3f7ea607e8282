//! What can stop a training run.

use std::path::PathBuf;

use crate::checkpoint::CheckpointError;

/// Errors of a run; each names the file or step involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("work dir {path}: {source}")]
    WorkDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("resume from {path}: {message}")]
    Resume { path: PathBuf, message: String },
    #[error("data: {0}")]
    Data(String),
    #[error("evaluation: {0}")]
    Eval(String),
    #[error("iteration {iter}: the loss is {loss} (not finite); stopping")]
    NonFinite { iter: usize, loss: f64 },
    #[error("the training set is empty (0 batches per epoch)")]
    EmptyData,
    #[error(
        "data-parallel training on {devices} devices needs at least {devices} batches per epoch; the data gives {batches}"
    )]
    TooFewBatches { devices: usize, batches: usize },
    #[error("this model does not support data-parallel training (--gpus)")]
    NoDataParallel,
    #[error(
        "optimizer_config.cumulative_iters = {cumulative_iters} with {devices} devices: gradient accumulation runs on one device only (drop --gpus, or accumulate less and use more devices)"
    )]
    AccumulateAcrossDevices {
        cumulative_iters: usize,
        devices: usize,
    },
    #[error("data-parallel replica {rank} failed: {message}")]
    Replica { rank: usize, message: String },
}
