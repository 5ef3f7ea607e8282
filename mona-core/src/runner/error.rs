//! What can stop a training run.

use std::path::{Path, PathBuf};

use crate::checkpoint::CheckpointError;

/// A batch the model cannot compute losses for (no labels, annotations it cannot take): the
/// batch is named by its images, so that the user finds the bad sample.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{batch}: {message}")]
pub struct LossError {
    /// What the batch is: `batch of [img1.jpg, img2.jpg]`.
    pub batch: String,
    pub message: String,
}

impl LossError {
    pub fn new(batch: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            batch: batch.into(),
            message: message.into(),
        }
    }

    /// A batch named by its image files.
    pub fn of_images(paths: &[PathBuf], message: impl Into<String>) -> Self {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        Self::new(format!("batch of [{}]", names.join(", ")), message)
    }
}

/// A failed write to the logs of `work_dir` (or its creation), as a [`TrainError`].
pub(crate) fn work_dir_err(work_dir: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::WorkDir {
        path: work_dir.to_path_buf(),
        source,
    }
}

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
    Data(super::BoxError),
    #[error("evaluation: {0}")]
    Eval(super::BoxError),
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
    #[error("iteration {iter}: {source}")]
    Loss { iter: usize, source: LossError },
    /// A collective of a distributed run failed.
    #[error(transparent)]
    Dist(#[from] crate::dist::DistError),
    #[error("data-parallel replica {rank} failed: {message}")]
    Replica { rank: usize, message: String },
    /// A `custom_hooks` hook stopped the run.
    #[error("custom hook {hook}: {source}")]
    Hook {
        hook: &'static str,
        source: super::BoxError,
    },
}
