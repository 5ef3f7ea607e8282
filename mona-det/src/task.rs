//! `train` and `test` for detector configs (`RetinaNet`, `CascadeRCNN`, any [`Detector`]):
//! evaluation by VOC mAP (mmdet `eval_map`) and / or COCO box AP (hotcoco), COCO-style
//! results files and `--show-dir` drawings. Batching is in [`crate::batch`].
//!
//! **Metrics** (`evaluation.metric`, or `--metrics`): `mAP` gives mmdet VOC's `mAP` and `AP50`
//! (IoU 0.5; VOC07 11-point AP when the dataset's `img_prefix` names VOC2007); `bbox` gives
//! `bbox_mAP`, `bbox_mAP_50`, `bbox_mAP_75`, `bbox_mAP_s/m/l` (COCO, mmdet's maxDets
//! 100/300/1000). Values are fractions in [0, 1], as mmdet reports them. A VOC dataset can be
//! scored with `bbox` too: its annotations are written as a COCO file first (difficult boxes as
//! crowd, so they are ignored as in VOC).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use image::{GrayImage, Rgb};
use mona_core::config::Config;
use mona_core::runner::{Metrics, train};
use mona_core::task::{ModelEntry, ModelPart, TaskError, TaskFns, TestArgs, TrainArgs};
use mona_core::task_setup::{
    check_metric_names, load_for_test, prepare_for_training, train_setup, workers,
};
use mona_data::{DataLoader, Dataset, sample_rng};

pub use crate::batch::{DetBatch, DetSource, collate};
use crate::cascade::CascadeRcnn;
use crate::data::{DetDataset, DetFormat, build_det_dataset};
use crate::detector::Detector;
use crate::metrics::coco::{CocoEvalError, CocoIouType, MMDET_MAX_DETS, coco_evaluate_value};
use crate::metrics::voc::{MapSettings, ScoredBox, VocAnnotation, eval_map};
use crate::model::RetinaNet;
use crate::retina::Detections;
use crate::roi::encode_rle;

/// Detections of every image of `dataset`, in the original image's coordinates.
pub fn predict_all<M: Detector>(
    model: &M,
    dataset: &DetDataset,
    device: &Device,
) -> Result<Vec<Detections>, String> {
    let mut out = Vec::with_capacity(dataset.len());
    for idx in 0..dataset.len() {
        let mut rng = sample_rng(0, 0, idx as u64);
        let r = dataset.load(idx, &mut rng).map_err(|e| e.to_string())?;
        let b = collate(std::slice::from_ref(&r), device)?;
        let mut dets = model.predict(&b)?.pop().unwrap_or_default();
        // mmdet `rescale=True`: back to the original image by the resize's scale factor.
        let f = b.scale_factors[0];
        for bb in &mut dets.bboxes {
            for (v, s) in bb.iter_mut().zip(f) {
                *v /= s;
            }
        }
        out.push(dets);
    }
    Ok(out)
}

/// mmdet's `score_thr` of `show_result` (boxes below it are not drawn).
pub const SHOW_SCORE_THR: f32 = 0.3;

/// The COCO-style results list (`[{image_id, category_id, bbox: [x, y, w, h], score}]`).
pub fn results_json(dataset: &DetDataset, dets: &[Detections]) -> serde_json::Value {
    let mut out = Vec::new();
    for (s, d) in dataset.samples().iter().zip(dets) {
        for ((b, &score), &label) in d.bboxes.iter().zip(&d.scores).zip(&d.labels) {
            out.push(serde_json::json!({
                "image_id": s.image_id,
                "category_id": dataset.cat_ids().get(label).copied().unwrap_or(label as u64 + 1),
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                "score": score,
            }));
        }
    }
    serde_json::Value::Array(out)
}

/// The COCO-style segmentation results (`[{image_id, category_id, bbox, score,
/// segmentation: {size, counts}}]`, mmdet's `_segm2json` with the box score as the mask
/// score) of detections that carry masks.
pub fn segm_results_json(dataset: &DetDataset, dets: &[Detections]) -> serde_json::Value {
    let mut out = Vec::new();
    for (s, d) in dataset.samples().iter().zip(dets) {
        for (((b, &score), &label), mask) in
            d.bboxes.iter().zip(&d.scores).zip(&d.labels).zip(&d.masks)
        {
            out.push(serde_json::json!({
                "image_id": s.image_id,
                "category_id": dataset.cat_ids().get(label).copied().unwrap_or(label as u64 + 1),
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                "score": score,
                "segmentation": encode_rle(mask)
                    .ok()
                    .and_then(|rle| serde_json::to_value(rle).ok()),
            }));
        }
    }
    serde_json::Value::Array(out)
}

/// The dataset's annotations as a COCO ground-truth file (ignored boxes as crowd).
fn coco_gt_json(dataset: &DetDataset) -> serde_json::Value {
    let mut anns = Vec::new();
    for s in dataset.samples() {
        let a = &s.ann;
        let all = a
            .bboxes
            .iter()
            .zip(&a.labels)
            .map(|x| (x, 0))
            .chain(a.bboxes_ignore.iter().zip(&a.labels_ignore).map(|x| (x, 1)));
        for ((b, &l), crowd) in all {
            let (w, h) = (b[2] - b[0], b[3] - b[1]);
            anns.push(serde_json::json!({
                "id": anns.len() + 1,
                "image_id": s.image_id,
                "category_id": dataset.cat_ids()[l],
                "bbox": [b[0], b[1], w, h],
                "area": w * h,
                "iscrowd": crowd,
            }));
        }
    }
    serde_json::json!({
        "images": dataset.samples().iter().map(|s| serde_json::json!({
            "id": s.image_id, "width": s.ann.width, "height": s.ann.height,
            "file_name": s.name,
        })).collect::<Vec<_>>(),
        "categories": dataset.classes().iter().zip(dataset.cat_ids()).map(|(n, id)| {
            serde_json::json!({"id": id, "name": n})
        }).collect::<Vec<_>>(),
        "annotations": anns,
    })
}

fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    mona_core::checkpoint::write_atomic_text(path, &text)
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// Options of detection's evaluation (mmdet's `CocoDataset.evaluate` keywords).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DetEvalOptions {
    /// Log each category's COCO AP as mmdet's table (`classwise=True`).
    pub classwise: bool,
}

impl DetEvalOptions {
    /// The keys `--eval-options` may set.
    pub const KEYS: &[&str] = &["classwise"];

    /// The config's `evaluation` keys, overridden by `--eval-options` (`cli`; unknown keys
    /// are refused).
    pub fn new(
        cfg: &Config,
        cli: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, TaskError> {
        mona_core::task_setup::check_eval_options("detection", cli, Self::KEYS)?;
        Ok(Self {
            classwise: mona_core::task_setup::eval_flag(cfg, cli, "classwise")?,
        })
    }
}

/// Scores `dets` with the named metrics (`mAP`, `bbox`).
pub fn score(
    dataset: &DetDataset,
    dets: &[Detections],
    metrics: &[String],
    options: &DetEvalOptions,
) -> Result<Metrics, String> {
    let mut out = Metrics::new();
    for m in metrics {
        match m.as_str() {
            "mAP" => {
                let k = dataset.classes().len();
                let det_results: Vec<Vec<Vec<ScoredBox>>> = dets
                    .iter()
                    .map(|d| {
                        let mut per = vec![Vec::new(); k];
                        for ((b, &s), &l) in d.bboxes.iter().zip(&d.scores).zip(&d.labels) {
                            if l < k {
                                per[l].push([b[0], b[1], b[2], b[3], s]);
                            }
                        }
                        per
                    })
                    .collect();
                let anns: Vec<VocAnnotation> = dataset
                    .samples()
                    .iter()
                    .map(|s| VocAnnotation {
                        bboxes: s.ann.bboxes.clone(),
                        labels: s.ann.labels.clone(),
                        bboxes_ignore: s.ann.bboxes_ignore.clone(),
                        labels_ignore: s.ann.labels_ignore.clone(),
                    })
                    .collect();
                let year_2007 = matches!(dataset.format(), DetFormat::Voc { year_2007: true });
                let r = eval_map(&det_results, &anns, k, &MapSettings::voc(year_2007));
                // mmdet 2.11 VOCDataset.evaluate: `AP50` rounded to 3 decimals, `mAP` the mean
                // over its IoU thresholds (here the one threshold 0.5).
                out.insert("AP50".into(), (r.mean_ap * 1000.0).round() / 1000.0);
                out.insert("mAP".into(), r.mean_ap);
            }
            "bbox" | "segm" => {
                let iou_type = if m == "segm" {
                    CocoIouType::Segm
                } else {
                    CocoIouType::Bbox
                };
                // Scored in memory, as mmdet scores its `COCO` objects: the ground truth is the
                // dataset's COCO file, or for a VOC dataset its boxes in COCO form.
                let (gt, gt_name) = match dataset.format() {
                    DetFormat::Coco { ann_file } => {
                        let gt = hotcoco::COCO::new(ann_file).map_err(|source| {
                            CocoEvalError::Annotations {
                                path: ann_file.clone(),
                                source,
                            }
                            .to_string()
                        })?;
                        (gt, ann_file.clone())
                    }
                    DetFormat::Voc { .. } => {
                        let voc: hotcoco::Dataset =
                            serde_json::from_value(coco_gt_json(dataset))
                                .map_err(|e| format!("the VOC boxes in COCO form: {e}"))?;
                        (
                            hotcoco::COCO::from_dataset(voc),
                            PathBuf::from("<VOC annotations>"),
                        )
                    }
                };
                let results = match iou_type {
                    CocoIouType::Segm => {
                        if !matches!(dataset.format(), DetFormat::Coco { .. }) {
                            return Err(
                                "metric \"segm\" needs a COCO dataset with instance masks".into()
                            );
                        }
                        if dets.iter().any(|d| d.masks.len() != d.bboxes.len()) {
                            return Err("metric \"segm\" needs a model with a mask head".into());
                        }
                        segm_results_json(dataset, dets)
                    }
                    CocoIouType::Bbox => results_json(dataset, dets),
                };
                let stats = if dets.iter().all(|d| d.bboxes.is_empty()) {
                    // pycocotools cannot load an empty results list: no detection, AP 0.
                    None
                } else {
                    Some(
                        coco_evaluate_value(gt, &gt_name, results, iou_type, &MMDET_MAX_DETS)
                            .map_err(|e| e.to_string())?,
                    )
                };
                if options.classwise {
                    match &stats {
                        Some(s) => tracing::info!(
                            "{m} AP per category:\n{}",
                            crate::metrics::coco::classwise_table(&s.per_category)
                        ),
                        None => tracing::info!("{m} AP per category: no detection to score"),
                    }
                }
                for (i, name) in ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
                    .iter()
                    .enumerate()
                {
                    let v = stats.as_ref().map_or(0.0, |s| s.stats[i]);
                    out.insert(format!("{m}_{name}"), v);
                }
            }
            other => {
                return Err(format!(
                    "metric \"{other}\" is not supported for detection (supported: mAP, bbox, segm)"
                ));
            }
        }
    }
    Ok(out)
}

/// Predicts and scores `dataset`; with `show_dir`, draws the detections.
pub fn evaluate<M: Detector>(
    model: &M,
    dataset: &DetDataset,
    device: &Device,
    metrics: &[String],
    options: &DetEvalOptions,
    show_dir: Option<&Path>,
) -> Result<Metrics, String> {
    let dets = predict_all(model, dataset, device)?;
    if let Some(dir) = show_dir {
        for (s, d) in dataset.samples().iter().zip(&dets) {
            draw_detections(
                dir,
                &s.filename,
                &s.name,
                d,
                dataset.classes(),
                SHOW_SCORE_THR,
            )?;
        }
    }
    score(dataset, &dets, metrics, options)
}

/// A fixed colour per class.
fn class_color(label: usize) -> Rgb<u8> {
    let mut h = (label as u32 + 1).wrapping_mul(2_654_435_761);
    h ^= h >> 15;
    Rgb([
        (h & 0xff) as u8 | 0x40,
        ((h >> 8) & 0xff) as u8 | 0x40,
        ((h >> 16) & 0xff) as u8 | 0x40,
    ])
}

/// mmdet `show_result`: the original image with every box scoring at least `score_thr`
/// (mmdet's default: [`SHOW_SCORE_THR`]) and its `class|score` label, written to `dir/<name>.png`; instance
/// masks are blended in at half opacity in the class colour (mmdet's `mask_color` blend).
pub fn draw_detections(
    dir: &Path,
    image: &Path,
    name: &str,
    dets: &Detections,
    classes: &[String],
    score_thr: f32,
) -> Result<PathBuf, String> {
    let mut img = mona_data::read_image(image).map_err(|e| e.to_string())?;
    for (i, ((b, &s), &l)) in dets
        .bboxes
        .iter()
        .zip(&dets.scores)
        .zip(&dets.labels)
        .enumerate()
    {
        if s < score_thr {
            continue;
        }
        let color = class_color(l);
        if let Some(mask) = dets.masks.get(i) {
            blend_mask(&mut img, mask, color);
        }
        let ib = [
            b[0].round() as i64,
            b[1].round() as i64,
            b[2].round() as i64,
            b[3].round() as i64,
        ];
        mona_data::draw::stroke_box(&mut img, ib, 1, color);
        let class = classes.get(l).map_or("?", String::as_str);
        mona_data::draw::draw_label(
            &mut img,
            ib[0],
            ib[1],
            &format!("{class}|{s:.2}"),
            color,
            Rgb([0, 0, 0]),
        );
    }
    let stem = Path::new(name)
        .with_extension("")
        .to_string_lossy()
        .replace('/', "_");
    let path = dir.join(format!("{stem}.png"));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    img.save(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Blends `color` at half opacity into the pixels of `img` where `mask` is set.
fn blend_mask(img: &mut image::RgbImage, mask: &GrayImage, color: Rgb<u8>) {
    let (w, h) = (
        img.width().min(mask.width()),
        img.height().min(mask.height()),
    );
    for y in 0..h {
        for x in 0..w {
            if mask.get_pixel(x, y).0[0] != 0 {
                let p = img.get_pixel_mut(x, y);
                for c in 0..3 {
                    p.0[c] = ((p.0[c] as u16 + color.0[c] as u16) / 2) as u8;
                }
            }
        }
    }
}

/// `evaluation.metric` (a name or a list; default `mAP`).
pub fn config_metrics(cfg: &Config) -> Result<Vec<String>, TaskError> {
    let metrics = mona_core::task_setup::evaluation_metrics(cfg, "mAP")?;
    check_metric_names("evaluation.metric", "detection", &metrics, DET_METRICS)?;
    Ok(metrics)
}

/// The metrics detection computes.
const DET_METRICS: &[&str] = &["mAP", "bbox", "segm"];

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

fn train_det<M: Detector>(cfg: &Config, args: &TrainArgs) -> Result<Metrics, TaskError> {
    let device = args.device.clone().autodiff();
    device.seed(args.seed);
    let model: M = build_model(cfg, &device)?;
    model
        .check_train_cfg()
        .map_err(|e| TaskError::Other(format!("{}: {e}", cfg.path().display())))?;
    let (model, rules) = prepare_for_training(cfg, args, model)?;
    let train_set: Arc<dyn Dataset> =
        Arc::from(mona_data::build_dataset(&cfg.node("data.train")?)?);
    let val_set = eval_dataset(cfg, "data.val")?;
    check_classes(&model, "data.train", train_set.as_ref())?;
    check_classes(&model, "data.val", val_set.as_ref())?;
    let metrics = config_metrics(cfg)?;
    let eval_options = DetEvalOptions::new(cfg, &Default::default())?;
    let batch_size = mona_core::task_setup::samples_per_gpu(cfg)?;
    // mmdet's loader keeps the last, smaller batch (drop_last = False).
    let loader = DataLoader::new(train_set, batch_size, true, args.seed, workers(cfg)?, false)
        .map_err(|e| TaskError::Data(e.to_string()))?;
    let source = DetSource {
        loader,
        device: device.clone(),
        seed: args.seed,
    };
    let method = model.method_name();
    let (optimizer, schedule, opts) =
        train_setup(cfg, args, &model, &|k| rules.trainable(k), &method)?;
    let eval_device = args.device.clone();
    let mut eval = |m: &M| {
        evaluate(
            &m.clone().valid(),
            &val_set,
            &eval_device,
            &metrics,
            &eval_options,
            None,
        )
    };
    let (model, summary) = train(model, optimizer, &schedule, &source, &mut eval, &opts)?;
    if summary.metrics.is_empty() && !summary.interrupted {
        return evaluate(
            &model.valid(),
            &val_set,
            &eval_device,
            &metrics,
            &eval_options,
            None,
        )
        .map_err(TaskError::Data);
    }
    Ok(summary.metrics)
}

fn test_det<M: Detector>(cfg: &Config, args: &TestArgs) -> Result<Metrics, TaskError> {
    check_metric_names("--metrics", "detection", &args.metrics, DET_METRICS)?;
    let eval_options = DetEvalOptions::new(cfg, &args.eval_options)?;
    let device = args.device.clone();
    let model: M = build_model(cfg, &device)?;
    let method = model.method_name();
    let model = load_for_test(cfg, model, args, &method)?;
    let test_set = eval_dataset(cfg, "data.test")?;
    check_classes(&model, "data.test", test_set.as_ref())?;
    let dets = predict_all(&model, &test_set, &device).map_err(TaskError::Data)?;
    if let Some(dir) = &args.show_dir {
        for (s, d) in test_set.samples().iter().zip(&dets) {
            draw_detections(
                dir,
                &s.filename,
                &s.name,
                d,
                test_set.classes(),
                args.show_score_thr,
            )
            .map_err(TaskError::Data)?;
        }
    }
    if let Some(out) = &args.out {
        write_json(out, &results_json(&test_set, &dets)).map_err(TaskError::Data)?;
        if dets.iter().any(|d| !d.masks.is_empty()) {
            // mmdet's `format_results` writes `<prefix>.bbox.json` and `<prefix>.segm.json`;
            // the boxes keep the name given, the masks go next to them.
            let segm = out.with_extension("segm.json");
            write_json(&segm, &segm_results_json(&test_set, &dets)).map_err(TaskError::Data)?;
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
    score(&test_set, &dets, &metrics, &eval_options).map_err(TaskError::Data)
}

/// The task functions of a detector type: what a crate registering another detector
/// submits, `ModelEntry::new(MyDetector::TYPE, detector_task_fns::<MyDetector>())`.
pub const fn detector_task_fns<M: Detector>() -> TaskFns {
    TaskFns {
        train: train_det::<M>,
        test: test_det::<M>,
        parts: det_parts::<M>,
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
