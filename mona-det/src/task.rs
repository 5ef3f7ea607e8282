//! `train` and `test` for detector configs (`RetinaNet`, `CascadeRCNN`, any [`Detector`]):
//! the datasets, the class check, the runner and the test outputs. Batching is in
//! [`crate::batch`], scoring in [`crate::evaluation`], results files in [`crate::results`],
//! drawings in [`crate::visualize`].

use std::sync::Arc;

use burn::tensor::Device;
use mona_core::config::Config;
use mona_core::dist::collect::shared_metrics;
use mona_core::runner::{BoxError, Metrics, TrainOptions};
use mona_core::task::{ModelEntry, ModelPart, TaskError, TaskFns, TestArgs, TrainArgs};
use mona_core::task_setup::{check_metric_names, load_for_test, workers};
use mona_core::train_task::{TrainTask, train_task};
use mona_data::transforms::TtaMode;
use mona_data::{DataLoader, Dataset};

pub use crate::batch::{DetBatch, DetSource, collate};
use crate::cascade::CascadeRcnn;
use crate::data::{DetDataset, build_det_dataset};
use crate::detector::Detector;
use crate::error::DetError;
use crate::evaluation::{
    DetEvalOptions, DetMetricEntry, config_metrics, draw_share, evaluate, predict_share, score,
};
use crate::model::RetinaNet;
use crate::results::{results_json, segm_results_json, write_json};
use crate::retina::Detections;
use crate::sharded::gather_detections;
use crate::tta::DetTestViews;

fn eval_dataset(cfg: &Config, key: &str) -> Result<Arc<DetDataset>, TaskError> {
    Ok(Arc::new(build_det_dataset(&cfg.node(key)?, true)?))
}

/// Builds the model of `cfg` on `device`.
pub fn build_model<M: Detector>(cfg: &Config, device: &Device) -> Result<M, TaskError> {
    Ok(M::from_config(&cfg.node("model")?, device)?)
}

/// mmdet's `NumClassCheckHook`: the head predicts exactly the dataset's classes.
fn check_classes<M: Detector>(
    model: &M,
    data_key: &str,
    dataset: &dyn Dataset,
) -> Result<(), TaskError> {
    let (num_classes, key) = model.num_classes();
    mona_data::datasets::check_head_classes(
        key,
        num_classes,
        data_key,
        dataset,
        mona_data::datasets::ClassRule::Exactly,
    )
    .map_err(|e| TaskError::Data(e.to_string()))
}

/// What detection's evaluation needs.
struct DetEval {
    val_set: Arc<DetDataset>,
    /// `data.val.pipeline`'s test-time augmentation views, as the config asks.
    views: DetTestViews,
    metrics: Vec<String>,
    options: DetEvalOptions,
}

/// Any [`Detector`] in the shared training skeleton.
struct DetTraining<M>(std::marker::PhantomData<M>);

impl<M: Detector> TrainTask for DetTraining<M> {
    type Model = M;
    type Source = DetSource;
    type Eval = DetEval;

    fn build_model(cfg: &Config, device: &Device) -> Result<M, TaskError> {
        build_model(cfg, device)
    }

    fn check_trainable(cfg: &Config, model: &M) -> Result<(), TaskError> {
        model
            .check_train_cfg()
            .map_err(|e| TaskError::Other(format!("{}: {e}", cfg.path().display())))
    }

    fn method(model: &M) -> String {
        model.method_name()
    }

    fn data(
        cfg: &Config,
        args: &TrainArgs,
        device: &Device,
        model: &M,
    ) -> Result<(DetSource, DetEval), TaskError> {
        let train_set: Arc<dyn Dataset> =
            Arc::from(mona_data::build_dataset(&cfg.node("data.train")?)?);
        let val_set = eval_dataset(cfg, "data.val")?;
        let views = DetTestViews::build(&cfg.node("data.val.pipeline")?, TtaMode::Config)?;
        check_classes(model, "data.train", train_set.as_ref())?;
        check_classes(model, "data.val", val_set.as_ref())?;
        let metrics = config_metrics(cfg)?;
        let options = DetEvalOptions::new(cfg, &Default::default())?;
        let batch_size = mona_core::task_setup::samples_per_gpu(cfg)?;
        // mmdet's loader keeps the last, smaller batch (drop_last = False).
        let loader = DataLoader::new(train_set, batch_size, true, args.seed, workers(cfg)?, false)
            .map_err(|e| TaskError::Data(e.to_string()))?
            .with_devices(args.devices());
        let source = DetSource {
            loader,
            device: device.clone(),
            seed: args.seed,
        };
        let eval = DetEval {
            val_set,
            views,
            metrics,
            options,
        };
        Ok((source, eval))
    }

    fn classes(eval: &DetEval) -> Vec<String> {
        eval.val_set.classes().to_vec()
    }

    fn evaluate(
        model: &M,
        eval: &DetEval,
        device: &Device,
        opts: &TrainOptions,
    ) -> Result<Metrics, BoxError> {
        Ok(evaluate(
            model,
            &eval.val_set,
            &eval.views,
            device,
            &eval.metrics,
            &eval.options,
            opts.process.as_ref(),
        )?)
    }
}

fn test_det<M: Detector>(cfg: &Config, args: &TestArgs) -> Result<Metrics, TaskError> {
    check_metric_names::<DetMetricEntry>("--metrics", "detection", &args.metrics)?;
    let eval_options = DetEvalOptions::new(cfg, &args.eval_options)?;
    let device = args.device.clone();
    let model: M = build_model(cfg, &device)?;
    let method = model.method_name();
    let model = load_for_test(cfg, model, args, &method)?;
    let test_set = eval_dataset(cfg, "data.test")?;
    check_classes(&model, "data.test", test_set.as_ref())?;
    // mmdet has no `--aug-test`: its users set `flip = True` in the test pipeline, which
    // `--aug-test` does here (the config's scales, each also flipped).
    let mode = if args.aug_test {
        TtaMode::Flip
    } else {
        TtaMode::Config
    };
    let views = DetTestViews::build(&cfg.node("data.test.pipeline")?, mode)?;
    if !views.is_plain() {
        tracing::info!(
            "test-time augmentation: {} views per image, merged as mmdet's aug_test",
            views.len()
        );
    }
    // a sharded test: every rank predicts and draws its share, rank 0 scores and writes the
    // whole set, and every rank receives its metrics
    let process = args.process.as_ref();
    let mine = predict_share(&model, &test_set, &views, &device, process).map_err(task_err)?;
    if let Some(dir) = &args.show_dir {
        draw_share(dir, &test_set, &mine, args.show_score_thr).map_err(task_err)?;
    }
    let dets = gather_detections(process, test_set.len(), mine).map_err(|e| task_err(e.into()))?;
    let metrics = dets
        .map(|dets| report(cfg, args, &test_set, &dets, &eval_options))
        .transpose()?;
    shared_metrics(process, metrics).map_err(|e| task_err(e.into()))
}

/// `--out` and the metrics of the whole test set's detections.
fn report(
    cfg: &Config,
    args: &TestArgs,
    test_set: &DetDataset,
    dets: &[Detections],
    eval_options: &DetEvalOptions,
) -> Result<Metrics, TaskError> {
    if let Some(out) = &args.out {
        write_json(out, &results_json(test_set, dets)).map_err(task_err)?;
        if dets.iter().any(|d| !d.masks.is_empty()) {
            // mmdet's `format_results` writes `<prefix>.bbox.json` and `<prefix>.segm.json`;
            // the boxes keep the name given, the masks go next to them.
            let segm = out.with_extension("segm.json");
            write_json(&segm, &segm_results_json(test_set, dets)).map_err(task_err)?;
            tracing::info!("mask results written to {}", segm.display());
        }
    }
    if args.format_only {
        return Ok(Metrics::new());
    }
    let metrics = if args.metrics.is_empty() {
        config_metrics(cfg)?
    } else {
        args.metrics.clone()
    };
    score(test_set, dets, &metrics, eval_options).map_err(task_err)
}

fn task_err(e: DetError) -> TaskError {
    TaskError::Task(e.into())
}

/// The task functions of a detector type: what a crate registering another detector
/// submits, `ModelEntry::new(MyDetector::TYPE, detector_task_fns::<MyDetector>())`.
pub const fn detector_task_fns<M: Detector>() -> TaskFns {
    TaskFns {
        train: train_task::<DetTraining<M>>,
        test: test_det::<M>,
        parts: det_parts::<M>,
        infer: crate::inference::infer_det::<M>,
    }
}

/// The detector's parts after its backbone ([`Detector::parts`]).
fn det_parts<M: Detector>(cfg: &Config) -> Result<Vec<ModelPart>, TaskError> {
    Ok(M::from_config(&cfg.node("model")?, &Device::flex())?.parts())
}

inventory::submit! {
    ModelEntry::new(RetinaNet::TYPE, detector_task_fns::<RetinaNet>())
}

inventory::submit! {
    ModelEntry::new(CascadeRcnn::TYPE, detector_task_fns::<CascadeRcnn>())
}
