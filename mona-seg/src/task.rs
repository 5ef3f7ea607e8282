//! `train` and `test` for `EncoderDecoder` configs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use image::{GrayImage, Rgb, RgbImage};
use mona_core::config::Config;
use mona_core::ops::resize::bilinear;
use mona_core::runner::{
    BatchSource, BoxError, LossError, Losses, Metrics, TrainModel, TrainOptions,
};
use mona_core::task::{ModelEntry, ModelPart, TaskError, TaskFns, TestArgs, TrainArgs};
use mona_core::task_setup::{check_metric_names, evaluation_metrics, load_for_test, workers};
use mona_core::train_task::{TrainTask, train_task};
use mona_data::datasets::{ClassRule, check_head_classes};
use mona_data::{DataLoader, Dataset, Results, sample_rng, stack_images};

use crate::dataset::SegDataset;
use crate::error::SegError;
use crate::metrics::{SegMetricEntry, SegStats, seg_metrics};
use crate::segmentor::{EncoderDecoder, SegBatch};
use mona_core::dist::collect::shard;
use mona_core::dist::{SharedGroup, is_primary};
use mona_data::transforms::{TtaMode, TtaView, build_tta_views};

impl TrainModel for EncoderDecoder {
    type Batch = SegBatch;

    fn losses(&self, batch: &SegBatch, training: bool) -> Result<Losses, LossError> {
        let Some(labels) = batch.labels.clone() else {
            return Err(LossError::of_images(
                &batch.paths,
                "has no gt_semantic_seg: training needs label maps",
            ));
        };
        Ok(EncoderDecoder::losses(
            self,
            batch.images.clone(),
            labels,
            training,
        ))
    }

    fn trainable(&self, key: &str) -> bool {
        EncoderDecoder::trainable(self, key)
    }

    fn batch_to_device(batch: &SegBatch, device: &Device) -> Option<SegBatch> {
        Some(SegBatch {
            images: batch.images.clone().to_device(device),
            labels: batch.labels.clone().map(|l| l.to_device(device)),
            paths: batch.paths.clone(),
        })
    }
}

/// Stacks pipeline results (same size, e.g. after `Pad`) onto `device`.
pub fn collate(batch: &[Results], device: &Device) -> Result<SegBatch, SegError> {
    let (pixels, shape) = stack_images(batch)?;
    let [b, _, h, w] = shape;
    let images = Tensor::<4>::from_data(TensorData::new(pixels, shape), device);
    let labels = if batch.iter().all(|r| r.gt_seg.is_some()) {
        let mut v = Vec::with_capacity(b * h * w);
        for r in batch {
            let seg = r.gt_seg.as_ref().expect("checked above");
            if (seg.height() as usize, seg.width() as usize) != (h, w) {
                return Err(SegError::LabelSize {
                    path: r.path.clone(),
                    label_w: seg.width(),
                    label_h: seg.height(),
                    image_w: w,
                    image_h: h,
                });
            }
            v.extend(seg.as_raw().iter().map(|&x| x as i64));
        }
        Some(Tensor::<3, Int>::from_data(
            TensorData::new(v, [b, h, w]),
            device,
        ))
    } else {
        None
    };
    Ok(SegBatch {
        images,
        labels,
        paths: batch.iter().map(|r| r.path.clone()).collect(),
    })
}

/// Training batches from a shuffled loader.
pub struct SegSource {
    pub loader: DataLoader,
    pub device: Device,
}

impl BatchSource<SegBatch> for SegSource {
    fn epoch_len(&self) -> usize {
        self.loader.epoch_len()
    }

    fn iter_epoch_strided<'a>(
        &'a self,
        epoch: usize,
        first: usize,
        stride: usize,
    ) -> Box<dyn Iterator<Item = Result<SegBatch, BoxError>> + 'a>
    where
        SegBatch: 'a,
    {
        Box::new(
            self.loader
                .iter_epoch_strided(epoch as u64, first, stride)
                .map(move |batch| Ok(collate(&batch?, &self.device)?)),
        )
    }
}

fn seg_dataset(cfg: &Config, key: &str) -> Result<Arc<SegDataset>, TaskError> {
    let node = cfg.node(key)?;
    Ok(Arc::new(crate::dataset::build_concrete(&node)?))
}

/// Per-image predictions (class index per pixel, original size) of a dataset, in order.
pub fn predict_one(
    model: &EncoderDecoder,
    dataset: &SegDataset,
    idx: usize,
    device: &Device,
) -> Result<(GrayImage, Results), SegError> {
    let mut rng = sample_rng(0, 0, idx as u64);
    let r = dataset.load(idx, &mut rng)?;
    predict_sample(model, r, device)
}

/// The prediction of one sample after the test pipeline: a class index per pixel of the
/// original image (logits resized to `ori_shape`, then argmax).
pub fn predict_sample(
    model: &EncoderDecoder,
    r: Results,
    device: &Device,
) -> Result<(GrayImage, Results), SegError> {
    let b = collate(std::slice::from_ref(&r), device)?;
    let logits = model.inference(b.images);
    let [oh, ow, _] = r.ori_shape;
    let img = label_map(bilinear(logits, [oh, ow]), &r)?;
    Ok((img, r))
}

/// The argmax over classes of `scores` `(1, C, H, W)` at the original size of `r`'s image.
pub(crate) fn label_map(scores: Tensor<4>, r: &Results) -> Result<GrayImage, SegError> {
    let [_, _, oh, ow] = scores.dims();
    let pred = scores.argmax(1).reshape([oh * ow]);
    let v: Vec<i64> = pred
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .map_err(|e| SegError::Readback {
            path: r.path.clone(),
            message: format!("{e:?}"),
        })?;
    GrayImage::from_raw(ow as u32, oh as u32, v.iter().map(|&x| x as u8).collect()).ok_or_else(
        || SegError::Readback {
            path: r.path.clone(),
            message: format!("{} values for a {ow}x{oh} prediction", v.len()),
        },
    )
}

/// mIoU / mAcc / aAcc (and per-class IoU) of `model` on `dataset`; with `show_dir`, writes
/// a colour overlay per image.
pub fn evaluate(
    model: &EncoderDecoder,
    dataset: &SegDataset,
    device: &Device,
    metrics: &[String],
    show_dir: Option<&Path>,
    views: &[TtaView],
    process: Option<&SharedGroup>,
) -> Result<Metrics, SegError> {
    let mut stats = SegStats::new(model.num_classes());
    // a sharded evaluation: rank r of W predicts images r, r + W, ... (mmcv's distributed
    // test sampler), and the areas are summed over the ranks
    for idx in shard(dataset.len(), process) {
        let (pred, r) = if views.len() > 1 {
            crate::tta::predict_views(model, dataset, idx, views, device)?
        } else {
            predict_one(model, dataset, idx, device)?
        };
        let gt = dataset.gt(idx)?;
        if gt.dimensions() != pred.dimensions() {
            return Err(SegError::GtSize {
                path: dataset.samples()[idx]
                    .ann
                    .as_ref()
                    .map_or(r.path.clone(), Clone::clone),
                label_w: gt.width(),
                label_h: gt.height(),
                image_w: pred.width(),
                image_h: pred.height(),
            });
        }
        stats.add(pred.as_raw(), gt.as_raw(), 255);
        if let Some(dir) = show_dir {
            write_overlay(dir, &r.path, &dataset.samples()[idx].name, &pred)?;
        }
    }
    if let Some(group) = process {
        stats = stats.summed_over(group)?;
    }
    seg_metrics(&stats, dataset.classes(), metrics)
}

/// A fixed colour per class (mmseg draws a random palette; this one is deterministic).
pub fn palette(class: u8) -> [u8; 3] {
    let c = class as u32;
    let mut h = c.wrapping_mul(2_654_435_761);
    h ^= h >> 13;
    [
        (h & 0xff) as u8,
        ((h >> 8) & 0xff) as u8,
        ((h >> 16) & 0xff) as u8,
    ]
}

/// `0.5 · image + 0.5 · colour(pred)`, written to `dir/<name>.png`.
pub fn write_overlay(
    dir: &Path,
    image: &Path,
    name: &str,
    pred: &GrayImage,
) -> Result<(), SegError> {
    let img = mona_data::read_image(image)?;
    let mut out = RgbImage::new(pred.width(), pred.height());
    for (x, y, p) in out.enumerate_pixels_mut() {
        let src = if x < img.width() && y < img.height() {
            img.get_pixel(x, y).0
        } else {
            [0, 0, 0]
        };
        let col = palette(pred.get_pixel(x, y).0[0]);
        *p = Rgb(std::array::from_fn(|i| {
            ((src[i] as u16 + col[i] as u16) / 2) as u8
        }));
    }
    let path: PathBuf = dir.join(format!("{}.png", name.replace('/', "_")));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| SegError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    out.save(&path)
        .map_err(|source| SegError::Encode { path, source })
}

/// The decode head must have an output for every class of `dataset`.
fn check_classes(
    model: &EncoderDecoder,
    data_key: &str,
    dataset: &SegDataset,
) -> Result<(), TaskError> {
    check_head_classes(
        "model.decode_head.num_classes",
        model.num_classes(),
        data_key,
        dataset,
        ClassRule::AtLeast,
    )
    .map_err(|e| TaskError::Data(e.to_string()))
}

/// `evaluation.metric` (a name or a list; default `mIoU`), each a registered segmentation
/// metric.
fn config_metrics(cfg: &Config) -> Result<Vec<String>, TaskError> {
    let metrics = evaluation_metrics(cfg, "mIoU")?;
    check_metric_names::<SegMetricEntry>("evaluation.metric", "segmentation", &metrics)?;
    Ok(metrics)
}

/// What segmentation's evaluation needs.
struct SegEval {
    val_set: Arc<SegDataset>,
    metrics: Vec<String>,
    /// The test-time augmentation views `data.val.pipeline` asks for (one: none).
    views: Vec<TtaView>,
}

/// Semantic segmentation in the shared training skeleton.
struct SegTraining;

impl TrainTask for SegTraining {
    type Model = EncoderDecoder;
    type Source = SegSource;
    type Eval = SegEval;

    fn check_config(cfg: &Config) -> Result<(), TaskError> {
        config_metrics(cfg).map(drop)
    }

    fn build_model(cfg: &Config, device: &Device) -> Result<EncoderDecoder, TaskError> {
        Ok(EncoderDecoder::from_config(&cfg.node("model")?, device)?)
    }

    fn method(model: &EncoderDecoder) -> String {
        model.backbone.method().name().to_string()
    }

    fn data(
        cfg: &Config,
        args: &TrainArgs,
        device: &Device,
        model: &EncoderDecoder,
    ) -> Result<(SegSource, SegEval), TaskError> {
        let train_set = seg_dataset(cfg, "data.train")?;
        let val_set = seg_dataset(cfg, "data.val")?;
        check_classes(model, "data.train", &train_set)?;
        check_classes(model, "data.val", &val_set)?;
        let batch_size = mona_core::task_setup::samples_per_gpu(cfg)?;
        let loader = DataLoader::new(
            train_set as Arc<dyn Dataset>,
            batch_size,
            true,
            args.seed,
            workers(cfg)?,
            true,
        )
        .map_err(|e| TaskError::Data(e.to_string()))?
        .with_devices(args.devices());
        let source = SegSource {
            loader,
            device: device.clone(),
        };
        let eval = SegEval {
            val_set,
            metrics: config_metrics(cfg)?,
            views: build_tta_views(&cfg.node("data.val.pipeline")?, TtaMode::Config)?,
        };
        Ok((source, eval))
    }

    fn classes(eval: &SegEval) -> Vec<String> {
        eval.val_set.classes().to_vec()
    }

    fn evaluate(
        model: &EncoderDecoder,
        eval: &SegEval,
        device: &Device,
        opts: &TrainOptions,
    ) -> Result<Metrics, BoxError> {
        Ok(evaluate(
            model,
            &eval.val_set,
            device,
            &eval.metrics,
            None,
            &eval.views,
            opts.process.as_ref(),
        )?)
    }
}

fn test_seg(cfg: &Config, args: &TestArgs) -> Result<Metrics, TaskError> {
    check_metric_names::<SegMetricEntry>("--metrics", "segmentation", &args.metrics)?;
    mona_core::task_setup::check_eval_options("segmentation", &args.eval_options, &[])?;
    if args.format_only {
        return Err(TaskError::Other(
            "--format-only: segmentation has no results format to write; --show-dir DIR draws the predictions over the images".into(),
        ));
    }
    let device = args.device.clone();
    let model = EncoderDecoder::from_config(&cfg.node("model")?, &device)?;
    let method = model.backbone.method().name().to_string();
    let model = load_for_test(cfg, model, args, &method)?;
    let test_set = seg_dataset(cfg, "data.test")?;
    check_classes(&model, "data.test", &test_set)?;
    let asked = if args.metrics.is_empty() {
        config_metrics(cfg)?
    } else {
        args.metrics.clone()
    };
    // mmseg's `--aug-test`: the ratios 0.5 to 1.75, each also flipped.
    let mode = if args.aug_test {
        TtaMode::AugTest
    } else {
        TtaMode::Config
    };
    let views = build_tta_views(&cfg.node("data.test.pipeline")?, mode)?;
    if views.len() > 1 {
        tracing::info!("test-time augmentation: {} views", views.len());
    }
    let metrics = evaluate(
        &model,
        &test_set,
        &device,
        &asked,
        args.show_dir.as_deref(),
        &views,
        args.process.as_ref(),
    )
    .map_err(|e| TaskError::Task(e.into()))?;
    if let Some(out) = args
        .out
        .as_ref()
        .filter(|_| is_primary(args.process.as_ref()))
    {
        let text = serde_json::to_string_pretty(&serde_json::json!({ "metrics": metrics }))
            .map_err(|e| TaskError::Other(e.to_string()))?;
        mona_core::checkpoint::write_atomic_text(out, &text).map_err(|source| TaskError::Io {
            path: out.clone(),
            source,
        })?;
    }
    Ok(metrics)
}

/// `decode_head`, and `auxiliary_head` when configured.
fn seg_parts(cfg: &Config) -> Result<Vec<ModelPart>, TaskError> {
    let model = EncoderDecoder::from_config(&cfg.node("model")?, &Device::flex())?;
    let mut parts = vec![ModelPart::of("decode_head", &model.decode_head)];
    if let Some(aux) = &model.auxiliary_head {
        parts.push(ModelPart::of("auxiliary_head", aux));
    }
    Ok(parts)
}

inventory::submit! {
    ModelEntry::new("EncoderDecoder", TaskFns { train: train_task::<SegTraining>, test: test_seg, parts: seg_parts, infer: crate::inference::infer_seg })
}
