//! What a training run is given besides the model, data and evaluation, and what it reports.

use std::path::PathBuf;

use super::Metrics;
use super::config::RunnerCfg;
use super::parallel::DataParallel;
use crate::dist::SharedGroup;

/// Where to resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Start fresh.
    No,
    /// From the newest checkpoint of the work dir, if there is one.
    Auto,
    /// From this checkpoint file.
    From(PathBuf),
}

/// Everything the loop needs besides the model, data and evaluation.
pub struct TrainOptions {
    pub work_dir: PathBuf,
    pub seed: u64,
    pub resume: Resume,
    pub runner: RunnerCfg,
    /// The merged config, stored in checkpoints and adapter files.
    pub config_toml: String,
    /// The backbone's tuning method, recorded in checkpoints and adapter files.
    pub method: String,
    /// Stop (as if killed) once this many iterations have run in this process; for tests.
    pub stop_after: Option<usize>,
    /// Export the trainable parameters as an adapter file at the end.
    pub export_adapter: bool,
    /// Data-parallel replicas besides the model's device (none by default); see
    /// [`super::parallel`].
    pub parallel: DataParallel,
    /// The processes of a distributed run (`--launcher mpi`); none when training alone.
    pub process: Option<SharedGroup>,
    /// The dataset's class names, stored in checkpoints and adapter files (mmdet's
    /// `meta['CLASSES']`); empty when the task has none to name.
    pub classes: Vec<String>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct TrainSummary {
    /// Completed iterations (global, including those before a resume).
    pub iters: usize,
    /// Completed epochs.
    pub epochs: usize,
    /// The last evaluation's metrics.
    pub metrics: Metrics,
    /// Loss of the last iteration.
    pub last_loss: f64,
    pub last_checkpoint: Option<PathBuf>,
    pub adapter_file: Option<PathBuf>,
    /// Whether training stopped early because of `stop_after`.
    pub interrupted: bool,
    /// Data-parallel runs: the largest difference between a replica's trainable parameters
    /// and the first device's at the end (0 when they stayed in step).
    pub replica_max_diff: Option<f32>,
}
