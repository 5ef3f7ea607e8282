//! One training entry point for every task: what classification, segmentation and detection
//! do the same way around their own model, data and metrics.
//!
//! [`train_task`] seeds the device, builds the model, applies `load_from`, builds the data
//! and the optimizer, runs the runner with the task's evaluation, and evaluates once more at
//! the end when no evaluation ran. A task says only what differs, by implementing
//! [`TrainTask`].

use burn::module::Module;
use burn::tensor::Device;

use crate::config::Config;
use crate::runner::{BatchSource, BoxError, Metrics, TrainModel, TrainOptions, train};
use crate::task::{TaskError, TrainArgs};
use crate::task_setup::{prepare_for_training, train_setup};

/// What a task adds to the shared training skeleton.
pub trait TrainTask {
    type Model: TrainModel + Clone;
    /// The training batches.
    type Source: BatchSource<<Self::Model as TrainModel>::Batch>;
    /// What evaluation needs: the validation set and the metric settings.
    type Eval;

    /// Checks that need nothing built (metric names); run first, so a typo fails at once.
    fn check_config(cfg: &Config) -> Result<(), TaskError> {
        let _ = cfg;
        Ok(())
    }

    /// The model of the config's `model` node on `device`.
    fn build_model(cfg: &Config, device: &Device) -> Result<Self::Model, TaskError>;

    /// Whether this model can train with this config (a detector's `train_cfg`).
    fn check_trainable(cfg: &Config, model: &Self::Model) -> Result<(), TaskError> {
        let _ = (cfg, model);
        Ok(())
    }

    /// The backbone's tuning method (recorded in checkpoints and adapter files).
    fn method(model: &Self::Model) -> String;

    /// The training batches on `device` and the evaluation's inputs, the datasets checked
    /// against the model.
    fn data(
        cfg: &Config,
        args: &TrainArgs,
        device: &Device,
        model: &Self::Model,
    ) -> Result<(Self::Source, Self::Eval), TaskError>;

    /// The class names stored with the checkpoints (mmdet's `meta['CLASSES']`); none by
    /// default.
    fn classes(eval: &Self::Eval) -> Vec<String> {
        let _ = eval;
        Vec::new()
    }

    /// The metrics of `model` (in inference mode) on `device`.
    fn evaluate(
        model: &Self::Model,
        eval: &Self::Eval,
        device: &Device,
        opts: &TrainOptions,
    ) -> Result<Metrics, BoxError>;
}

/// Trains the task `T` per the config; returns the final evaluation's metrics.
pub fn train_task<T: TrainTask>(cfg: &Config, args: &TrainArgs) -> Result<Metrics, TaskError> {
    T::check_config(cfg)?;
    let device = args.device.clone().autodiff();
    device.seed(args.seed);
    let model = T::build_model(cfg, &device)?;
    T::check_trainable(cfg, &model)?;
    let (model, rules) = prepare_for_training(cfg, args, model)?;
    let (source, eval_inputs) = T::data(cfg, args, &device, &model)?;
    let method = T::method(&model);
    let (optimizer, schedule, mut opts) =
        train_setup(cfg, args, &model, &|k| rules.trainable(k), &method)?;
    opts.classes = T::classes(&eval_inputs);
    let eval_device = args.device.clone();
    let mut eval =
        |m: &T::Model| T::evaluate(&m.clone().valid(), &eval_inputs, &eval_device, &opts);
    let (model, summary) = train(model, optimizer, &schedule, &source, &mut eval, &opts)?;
    // every rank of a distributed run takes its share (the metrics are rank 0's on all, so
    // all ranks agree whether one ran)
    if summary.metrics.is_empty() && !summary.interrupted {
        return T::evaluate(&model.valid(), &eval_inputs, &eval_device, &opts)
            .map_err(TaskError::Task);
    }
    Ok(summary.metrics)
}
