//! `train` and `test` for `ImageClassifier` configs.

use std::sync::Arc;

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use mona_core::config::Config;
use mona_core::dist::collect::{collect_shares, shared_metrics};
use mona_core::dist::wire::{WireReader, WireWriter};
use mona_core::dist::{DistError, SharedGroup};
use mona_core::random::{Shard, shard_ranges};
use mona_core::runner::{
    BoxError, LossError, Losses, Metrics, TrainModel, TrainOptions, batch_shards,
};
use mona_core::task::{ModelEntry, ModelPart, TaskError, TaskFns, TestArgs, TrainArgs};
use mona_core::task_setup::{check_metric_names, evaluation_metrics, workers};
use mona_core::train_task::{TrainTask, train_task};
use mona_data::datasets::{ClassRule, check_head_classes};
use mona_data::{DataLoader, Dataset, build_dataset};

use crate::data::{ClsBatch, ClsSource, collate};
use crate::error::ClsError;
use crate::metrics::{ClsMetricEntry, cls_metrics, top1};
use crate::model::ImageClassifier;

impl TrainModel for ImageClassifier {
    type Batch = ClsBatch;

    fn losses(&self, batch: &ClsBatch, training: bool) -> Result<Losses, LossError> {
        let Some(labels) = batch.labels.clone() else {
            return Err(LossError::of_images(
                &batch.paths,
                "has no gt_label: training needs labelled images",
            ));
        };
        let logits = self.forward(batch.images.clone(), training);
        let loss = self.loss(logits, labels);
        Ok(Losses {
            total: loss.clone(),
            parts: vec![("loss_cls".into(), loss)],
        })
    }

    fn trainable(&self, key: &str) -> bool {
        ImageClassifier::trainable(self, key)
    }

    fn batch_to_device(batch: &ClsBatch, device: &Device) -> Option<ClsBatch> {
        Some(ClsBatch {
            images: batch.images.clone().to_device(device),
            labels: batch.labels.clone().map(|l| l.to_device(device)),
            paths: batch.paths.clone(),
        })
    }

    /// The mean cross entropy is a mean of per-sample losses, so consecutive slices of the
    /// images and labels split it exactly.
    fn split_batch(&self, batch: &ClsBatch, parts: usize) -> Option<Vec<(ClsBatch, Shard)>> {
        let [n, _, _, _] = batch.images.dims();
        Some(
            shard_ranges(n, parts)
                .map(|shard| {
                    let range = shard.first..shard.first + shard.len;
                    let slice = ClsBatch {
                        images: batch.images.clone().slice(range.clone()),
                        labels: batch.labels.clone().map(|l| l.slice(range.clone())),
                        paths: batch
                            .paths
                            .get(range)
                            .map(<[_]>::to_vec)
                            .unwrap_or_default(),
                    };
                    (slice, shard)
                })
                .collect(),
        )
    }
}

fn dataset(cfg: &Config, key: &str) -> Result<Arc<dyn Dataset>, TaskError> {
    Ok(Arc::from(build_dataset(&cfg.node(key)?)?))
}

/// Softmax scores (`n × classes`, row-major), labels and paths of a dataset, in order.
pub type Predictions = (Vec<f32>, Vec<Option<usize>>, Vec<std::path::PathBuf>);

/// Per-sample class scores (softmax) of a whole dataset, in dataset order.
///
/// With a process group (a sharded evaluation) rank `r` of `W` predicts batches `r`,
/// `r + W`, ... of the unshuffled loader, the batches one process would form, so every image
/// is scored exactly as alone; rank 0 receives the whole set's predictions and the other
/// ranks `None`.
pub fn predict(
    model: &ImageClassifier,
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    shards: usize,
    workers: usize,
    device: &Device,
    process: Option<&SharedGroup>,
) -> Result<Option<Predictions>, ClsError> {
    let batch_size = batch_size.max(1);
    let len = dataset.len();
    let loader = DataLoader::new(dataset, batch_size, false, 0, workers, false)?;
    let (rank, world) = process.map_or((0, 1), |g| (g.rank(), g.world()));
    let classes = model.num_classes();
    let mut mine: Vec<(usize, Scored)> = Vec::new();
    for (batch, b) in loader
        .iter_epoch_strided(0, rank, world)
        .zip((rank..).step_by(world))
    {
        let batch = batch?;
        let labels: Vec<Option<usize>> = batch.iter().map(|r| r.gt_label).collect();
        let collated = collate(&batch, device)?;
        let probs = softmax(model.forward_sharded(collated.images, shards), 1);
        let v: Vec<f32> = probs
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .map_err(|e| ClsError::Readback(format!("{e:?}")))?;
        for (k, ((row, label), path)) in v
            .chunks(classes)
            .zip(labels)
            .zip(collated.paths)
            .enumerate()
        {
            mine.push((b * batch_size + k, (row.to_vec(), label, path)));
        }
    }
    let all = collect_shares(
        process,
        "classification predictions",
        len,
        mine,
        encode_scored,
        decode_scored,
    )?;
    Ok(all.map(|all: Vec<Scored>| {
        let mut out: Predictions = (Vec::new(), Vec::new(), Vec::new());
        for (row, label, path) in all {
            out.0.extend(row);
            out.1.push(label);
            out.2.push(path);
        }
        out
    }))
}

/// One image's scores, label and path.
type Scored = (Vec<f32>, Option<usize>, std::path::PathBuf);

fn encode_scored((row, label, path): &Scored, w: &mut WireWriter) {
    w.f32s(row)
        .u64(label.map_or(u64::MAX, |l| l as u64))
        .str(&path.to_string_lossy());
}

fn decode_scored(r: &mut WireReader) -> Result<Scored, DistError> {
    let row = r.f32s()?;
    let label = r.u64()?;
    let label = (label != u64::MAX).then_some(label as usize);
    Ok((row, label, r.str()?.into()))
}

/// The head must have an output for every class of `dataset`.
fn check_classes(
    model: &ImageClassifier,
    data_key: &str,
    dataset: &dyn Dataset,
) -> Result<(), TaskError> {
    check_head_classes(
        "model.head.num_classes",
        model.num_classes(),
        data_key,
        dataset,
        ClassRule::AtLeast,
    )
    .map_err(|e| TaskError::Data(e.to_string()))
}

fn evaluate(
    model: &ImageClassifier,
    eval: &ClsEval,
    shards: usize,
    device: &Device,
    process: Option<&SharedGroup>,
) -> Result<Metrics, ClsError> {
    let predictions = predict(
        model,
        eval.val_set.clone(),
        eval.batch_size,
        shards,
        eval.workers,
        device,
        process,
    )?;
    let metrics = predictions
        .map(|(scores, labels, _)| {
            let labels: Option<Vec<usize>> = labels.into_iter().collect();
            let labels = labels.ok_or(ClsError::Unlabelled)?;
            cls_metrics(&scores, model.num_classes(), &labels, &eval.metrics)
        })
        .transpose()?;
    Ok(shared_metrics(process, metrics)?)
}

/// What classification's evaluation needs.
struct ClsEval {
    val_set: Arc<dyn Dataset>,
    batch_size: usize,
    workers: usize,
    metrics: Vec<String>,
}

/// Image classification in the shared training skeleton.
struct ClsTraining;

impl TrainTask for ClsTraining {
    type Model = ImageClassifier;
    type Source = ClsSource;
    type Eval = ClsEval;

    fn check_config(cfg: &Config) -> Result<(), TaskError> {
        let metrics = evaluation_metrics(cfg, "accuracy")?;
        check_metric_names::<ClsMetricEntry>("evaluation.metric", "classification", &metrics)
    }

    fn build_model(cfg: &Config, device: &Device) -> Result<ImageClassifier, TaskError> {
        Ok(ImageClassifier::from_config(&cfg.node("model")?, device)?)
    }

    fn method(model: &ImageClassifier) -> String {
        model.backbone.method().name().to_string()
    }

    fn data(
        cfg: &Config,
        args: &TrainArgs,
        device: &Device,
        model: &ImageClassifier,
    ) -> Result<(ClsSource, ClsEval), TaskError> {
        let train_set = dataset(cfg, "data.train")?;
        let val_set = dataset(cfg, "data.val")?;
        for (key, set) in [("data.train", &train_set), ("data.val", &val_set)] {
            check_classes(model, key, set.as_ref())?;
        }
        let batch_size = mona_core::task_setup::samples_per_gpu(cfg)?;
        let workers = workers(cfg)?;
        let source = ClsSource::new(
            train_set,
            batch_size,
            args.seed,
            workers,
            device.clone(),
            args.devices(),
        )
        .map_err(|e| TaskError::Task(e.into()))?;
        let eval = ClsEval {
            val_set,
            batch_size,
            workers,
            metrics: evaluation_metrics(cfg, "accuracy")?,
        };
        Ok((source, eval))
    }

    fn classes(eval: &ClsEval) -> Vec<String> {
        eval.val_set.classes().to_vec()
    }

    fn evaluate(
        model: &ImageClassifier,
        eval: &ClsEval,
        device: &Device,
        opts: &TrainOptions,
    ) -> Result<Metrics, BoxError> {
        Ok(evaluate(
            model,
            eval,
            opts.runner.batch_shards,
            device,
            opts.process.as_ref(),
        )?)
    }
}

/// Loads what `test` was given: a training checkpoint, an adapter file on top of the
/// pretrained backbone, or a plain state dict.
pub fn load_for_test(
    cfg: &Config,
    args: &TestArgs,
    device: &Device,
) -> Result<ImageClassifier, TaskError> {
    let model = ImageClassifier::from_config(&cfg.node("model")?, device)?;
    let method = model.backbone.method().name().to_string();
    mona_core::task_setup::load_for_test(cfg, model, args, &method)
}

fn test_cls(cfg: &Config, args: &TestArgs) -> Result<Metrics, TaskError> {
    check_metric_names::<ClsMetricEntry>("--metrics", "classification", &args.metrics)?;
    mona_core::task_setup::check_eval_options("classification", &args.eval_options, &[])?;
    if args.aug_test {
        return Err(TaskError::Other(
            "--aug-test: classification has no test-time augmentation (segmentation and detection have)".into(),
        ));
    }
    if let Some(dir) = &args.show_dir {
        return Err(TaskError::Other(format!(
            "--show-dir {}: classification draws no pictures; --out FILE writes every image's predicted class and score",
            dir.display()
        )));
    }
    let device = args.device.clone();
    let model = load_for_test(cfg, args, &device)?;
    let test_set = dataset(cfg, "data.test")?;
    check_classes(&model, "data.test", test_set.as_ref())?;
    let batch_size = mona_core::task_setup::samples_per_gpu(cfg)?;
    let shards = batch_shards(cfg)?;
    let process = args.process.as_ref();
    let predictions = predict(
        &model,
        test_set,
        batch_size,
        shards,
        workers(cfg)?,
        &device,
        process,
    )
    .map_err(|e| TaskError::Task(e.into()))?;
    // rank 0 of a sharded test scores and writes the whole set; the others receive its metrics
    let metrics = predictions
        .map(|p| report(args, model.num_classes(), p))
        .transpose()?;
    shared_metrics(process, metrics).map_err(|e| TaskError::Task(e.into()))
}

/// The metrics of the whole test set's predictions, and `--out`.
fn report(
    args: &TestArgs,
    classes: usize,
    (scores, labels, paths): Predictions,
) -> Result<Metrics, TaskError> {
    let mut metrics = Metrics::new();
    // `--format-only`: the predictions only (to `--out`), no metrics.
    let labelled = labels.iter().copied().collect::<Option<Vec<usize>>>();
    if let Some(labels) = labelled.filter(|_| !args.format_only) {
        metrics = cls_metrics(&scores, classes, &labels, &args.metrics)
            .map_err(|e| TaskError::Task(e.into()))?;
    }
    if let Some(out) = &args.out {
        let rows: Vec<serde_json::Value> = (0..paths.len())
            .map(|i| {
                let (pred, score) = top1(&scores[i * classes..(i + 1) * classes]);
                serde_json::json!({
                    "path": paths[i],
                    "pred_label": pred,
                    "pred_score": score,
                    "gt_label": labels[i],
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&serde_json::json!({
            "metrics": metrics,
            "predictions": rows,
        }))
        .map_err(|e| TaskError::Other(e.to_string()))?;
        mona_core::checkpoint::write_atomic_text(out, &text).map_err(|source| TaskError::Io {
            path: out.clone(),
            source,
        })?;
    }
    Ok(metrics)
}

/// The `head` (the global-average-pooling neck has no parameters).
fn cls_parts(cfg: &Config) -> Result<Vec<ModelPart>, TaskError> {
    let model = ImageClassifier::from_config(&cfg.node("model")?, &Device::flex())?;
    Ok(vec![ModelPart::of("head", &model.head)])
}

inventory::submit! {
    ModelEntry::new("ImageClassifier", TaskFns { train: train_task::<ClsTraining>, test: test_cls, parts: cls_parts, infer: crate::inference::infer_cls })
}
