//! Detection's evaluation: predicting a dataset and scoring the detections by VOC mAP (mmdet
//! `eval_map`), COCO box AP and COCO mask AP (hotcoco, in memory).
//!
//! **Metrics** (`evaluation.metric`, or `--metrics`): `mAP` gives mmdet VOC's `mAP` and `AP50`
//! (IoU 0.5; VOC07 11-point AP when the dataset's `img_prefix` names VOC2007); `bbox` gives
//! `bbox_mAP`, `bbox_mAP_50`, `bbox_mAP_75`, `bbox_mAP_s/m/l` (COCO, mmdet's maxDets
//! 100/300/1000); `segm` the same for masks. Values are fractions in [0, 1], as mmdet reports
//! them. A VOC dataset can be scored with `bbox` too: its annotations become COCO ground truth
//! first (difficult boxes as crowd, so they are ignored as in VOC).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mona_core::config::Config;
use mona_core::runner::Metrics;
use mona_core::task::TaskError;
use mona_core::task_setup::check_metric_names;
use mona_data::{Dataset, sample_rng};

use crate::batch::collate;
use crate::data::{DetDataset, DetFormat};
use crate::detector::Detector;
use crate::metrics::coco::{CocoEvalError, CocoIouType, MMDET_MAX_DETS, coco_evaluate_value};
use crate::metrics::voc::{MapSettings, ScoredBox, VocAnnotation, eval_map};
use crate::results::{coco_gt_json, results_json, segm_results_json};
use crate::retina::Detections;
use crate::visualize::{SHOW_SCORE_THR, draw_detections};

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

/// `evaluation.metric` (a name or a list; default `mAP`).
pub fn config_metrics(cfg: &Config) -> Result<Vec<String>, TaskError> {
    let metrics = mona_core::task_setup::evaluation_metrics(cfg, "mAP")?;
    check_metric_names("evaluation.metric", "detection", &metrics, DET_METRICS)?;
    Ok(metrics)
}

/// The metrics detection computes.
pub const DET_METRICS: &[&str] = &["mAP", "bbox", "segm"];
