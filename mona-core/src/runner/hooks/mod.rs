//! The runner's hooks, as mmcv's: the loop trains, and everything around a step is a hook
//! with one job, called in a fixed order after every iteration and once at the end.
//!
//! Before an iteration: [`LrUpdaterHook`] sets each parameter's lr from the schedule.
//! After an iteration: [`ProgressHook`] (the terminal's bar), [`LoggerHook`] (the loss
//! window, `log.jsonl` and `train.log`), [`EvalHook`] (evaluation and `save_best`),
//! [`CheckpointHook`] (interval checkpoints and their pruning), then the config's
//! `custom_hooks` ([`super::custom_hooks`]). At the end: the bar is cleared, [`ReplicaSummaryHook`] logs
//! how far data-parallel replicas drifted, [`AdapterExportHook`] writes the trainable
//! parameters, and the custom hooks close.
//!
//! The order is the order of the lines in the logs, so it is part of the logs' format:
//! resumed runs and the held-out step-by-step checks compare them line by line.

mod checkpoint;
pub(crate) mod custom;
mod eval;
mod export;
mod log;
mod lr;
mod progress;
mod replicas;

use std::path::PathBuf;
use std::time::Instant;

use super::error::{TrainError, work_dir_err};
use super::logger::JsonLog;
use super::optim::Optimizer;
use super::options::TrainSummary;
use super::save_best::Best;
use super::schedule::Progress;

pub use checkpoint::CheckpointHook;
pub use eval::EvalHook;
pub use export::AdapterExportHook;
pub use log::LoggerHook;
pub use lr::LrUpdaterHook;
pub use progress::ProgressHook;
pub use replicas::ReplicaSummaryHook;

/// The loop's length.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    /// Iterations per epoch (per device group with `--gpus N`).
    pub epoch_len: usize,
    pub max_iters: usize,
    pub max_epochs: usize,
    /// An epoch-based runner (names, intervals and log lines count epochs).
    pub by_epoch: bool,
}

impl Geometry {
    /// `epoch_N` or `iter_N`: the name of a checkpoint written after iteration `iter`.
    pub fn position_tag(&self, iter: usize) -> String {
        if self.by_epoch {
            format!("epoch_{}", iter / self.epoch_len)
        } else {
            format!("iter_{iter}")
        }
    }

    /// Whether iteration `iter` (completed) ends an `interval`: every `interval` epochs for an
    /// epoch-based runner (at epoch boundaries), every `interval` iterations otherwise;
    /// never for `interval` 0.
    pub fn at_interval(&self, iter: usize, interval: usize) -> bool {
        if interval == 0 {
            return false;
        }
        if self.by_epoch {
            iter.is_multiple_of(self.epoch_len) && (iter / self.epoch_len).is_multiple_of(interval)
        } else {
            iter.is_multiple_of(interval)
        }
    }

    /// Where the schedule is at iteration `iter`.
    pub fn progress(&self, iter: usize) -> Progress {
        Progress {
            epoch: iter / self.epoch_len,
            iter,
            epoch_len: self.epoch_len,
            max_epochs: self.max_epochs,
            max_iters: self.max_iters,
        }
    }
}

/// What the hooks share: the run's position, its logs and its summary.
pub struct RunState {
    pub work_dir: PathBuf,
    pub log: JsonLog,
    /// The terminal's progress bar (hidden when stderr is not a terminal); evaluation
    /// suspends it so that its lines are not drawn over.
    pub bar: indicatif::ProgressBar,
    pub geometry: Geometry,
    /// Completed iterations (global, including those before a resume).
    pub iter: usize,
    /// The iteration this process started at, and when.
    pub start_iter: usize,
    pub started: Instant,
    pub summary: TrainSummary,
    /// The best evaluation so far (`save_best`), recorded in every checkpoint.
    pub best: Option<Best>,
    /// The metrics of an evaluation at the current iteration, if one ran.
    pub evaluated: Option<super::Metrics>,
    /// Data-parallel runs: how far the replicas drifted (set before the end hooks).
    pub replica_diff: Option<f32>,
}

impl RunState {
    /// A log write failure, naming the work dir.
    pub fn log_err(&self) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
        work_dir_err(&self.work_dir)
    }
}

/// What one iteration produced.
#[derive(Debug, Clone)]
pub struct IterOutcome {
    /// The total loss (mean over devices) and its named parts.
    pub loss: f64,
    pub parts: Vec<(String, f64)>,
    /// When the step started (after its batch was loaded).
    pub started: Instant,
    /// Seconds spent loading this iteration's batches.
    pub data_time: f64,
    /// The gradient norm of the last optimizer step (0 without clipping).
    pub grad_norm: f64,
}

/// One job around the training step.
pub trait Hook<M> {
    /// Before the iteration after `run.iter`, ahead of its forward pass.
    fn before_iter(
        &mut self,
        run: &mut RunState,
        optimizer: &mut Optimizer,
    ) -> Result<(), TrainError> {
        let _ = (run, optimizer);
        Ok(())
    }

    /// After iteration `run.iter` (already counted), with the model as the optimizer left it.
    fn after_iter(
        &mut self,
        run: &mut RunState,
        model: &M,
        optimizer: &Optimizer,
        step: &IterOutcome,
    ) -> Result<(), TrainError> {
        let _ = (run, model, optimizer, step);
        Ok(())
    }

    /// Once, after the last iteration (also after an interrupted run).
    fn after_run(&mut self, run: &mut RunState, model: &M) -> Result<(), TrainError> {
        let _ = (run, model);
        Ok(())
    }
}
