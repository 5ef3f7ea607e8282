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
use mona_core::dist::SharedGroup;
use mona_core::dist::collect::{shard, shared_metrics};
use mona_core::runner::{BoxError, Metrics};
use mona_core::task::TaskError;
use mona_core::task_setup::check_metric_names;
use mona_data::{Dataset, sample_rng};

use crate::data::{DetDataset, DetFormat};
use crate::detector::Detector;
use crate::error::DetError;
use crate::metrics::coco::{CocoEvalError, CocoIouType, MMDET_MAX_DETS, coco_evaluate_value};
use crate::metrics::voc::{MapSettings, ScoredBox, VocAnnotation, eval_map};
use crate::results::{coco_gt_json, results_json, segm_results_json};
use crate::retina::Detections;
use crate::sharded::gather_detections;
use crate::tta::DetTestViews;
use crate::visualize::draw_detections;

/// Detections of every image of `dataset` through the test `views`, in the original image's
/// coordinates.
pub fn predict_all<M: Detector>(
    model: &M,
    dataset: &DetDataset,
    views: &DetTestViews,
    device: &Device,
) -> Result<Vec<Detections>, DetError> {
    Ok(predict_share(model, dataset, views, device, None)?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

/// The detections of this process's share of `dataset` with their indices: every image
/// alone, or rank `r` of `W`'s images `r`, `r + W`, ... in a sharded evaluation.
pub fn predict_share<M: Detector>(
    model: &M,
    dataset: &DetDataset,
    views: &DetTestViews,
    device: &Device,
    process: Option<&SharedGroup>,
) -> Result<Vec<(usize, Detections)>, DetError> {
    shard(dataset.len(), process)
        .map(|idx| {
            let d = views.predict(
                model,
                |pipeline| dataset.load_with(idx, pipeline, &mut sample_rng(0, 0, idx as u64)),
                device,
            )?;
            Ok((idx, d))
        })
        .collect()
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

/// What a detection metric scores: a dataset's annotations and one detection list per image
/// (in the original image's coordinates), with the evaluation's options.
pub struct DetScoring<'a> {
    pub dataset: &'a DetDataset,
    pub dets: &'a [Detections],
    pub options: &'a DetEvalOptions,
}

mona_core::declare_registry! {
    /// Detection metrics, by the name `evaluation.metric` and `test --metrics` give: each
    /// entry turns a [`DetScoring`] into named values. Open to other crates: a plugin submits
    /// a `DetMetricEntry` and its name becomes valid in configs and on the command line.
    pub struct DetMetricEntry: "metric" => fn(&DetScoring<'_>) -> Result<Metrics, BoxError>;
}

inventory::submit! { DetMetricEntry::new("mAP", voc_map) }
inventory::submit! { DetMetricEntry::new("bbox", |s| Ok(coco_metric(s, CocoIouType::Bbox)?)) }
inventory::submit! { DetMetricEntry::new("segm", |s| Ok(coco_metric(s, CocoIouType::Segm)?)) }

/// Scores `dets` with the named metrics of the detection metric registry.
pub fn score(
    dataset: &DetDataset,
    dets: &[Detections],
    metrics: &[String],
    options: &DetEvalOptions,
) -> Result<Metrics, DetError> {
    let scoring = DetScoring {
        dataset,
        dets,
        options,
    };
    let mut out = Metrics::new();
    for m in metrics {
        let entry = mona_core::registry::find::<DetMetricEntry>(m)
            .ok_or_else(|| DetError::UnknownMetric(m.clone()))?;
        out.extend((entry.build)(&scoring).map_err(DetError::Model)?);
    }
    Ok(out)
}

/// mmdet VOC's `mAP` and `AP50` (IoU 0.5; VOC07 11-point AP for a VOC2007 dataset).
fn voc_map(s: &DetScoring<'_>) -> Result<Metrics, BoxError> {
    let (dataset, dets) = (s.dataset, s.dets);
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
    // mmdet 2.11 VOCDataset.evaluate: `AP50` rounded to 3 decimals, `mAP` the mean over its
    // IoU thresholds (here the one threshold 0.5).
    let mut out = Metrics::new();
    out.insert("AP50".into(), (r.mean_ap * 1000.0).round() / 1000.0);
    out.insert("mAP".into(), r.mean_ap);
    Ok(out)
}

/// COCO box (`bbox_*`) or mask (`segm_*`) AP, scored in memory as mmdet scores its `COCO`
/// objects: the ground truth is the dataset's COCO file, or for a VOC dataset its boxes in
/// COCO form.
fn coco_metric(s: &DetScoring<'_>, iou_type: CocoIouType) -> Result<Metrics, DetError> {
    let (dataset, dets) = (s.dataset, s.dets);
    let m = match iou_type {
        CocoIouType::Segm => "segm",
        CocoIouType::Bbox => "bbox",
    };
    let (gt, gt_name) = match dataset.format() {
        DetFormat::Coco { ann_file } => {
            let gt = hotcoco::COCO::new(ann_file).map_err(|source| CocoEvalError::Annotations {
                path: ann_file.clone(),
                source,
            })?;
            (gt, ann_file.clone())
        }
        DetFormat::Voc { .. } => {
            let voc: hotcoco::Dataset =
                serde_json::from_value(coco_gt_json(dataset)).map_err(DetError::VocAsCoco)?;
            (
                hotcoco::COCO::from_dataset(voc),
                PathBuf::from("<VOC annotations>"),
            )
        }
    };
    let results = match iou_type {
        CocoIouType::Segm => {
            if !matches!(dataset.format(), DetFormat::Coco { .. }) {
                return Err(DetError::SegmNeedsCoco);
            }
            if dets.iter().any(|d| d.masks.len() != d.bboxes.len()) {
                return Err(DetError::SegmNeedsMasks);
            }
            segm_results_json(dataset, dets)
        }
        CocoIouType::Bbox => results_json(dataset, dets),
    };
    let stats = if dets.iter().all(|d| d.bboxes.is_empty()) {
        // pycocotools cannot load an empty results list: no detection, AP 0.
        None
    } else {
        Some(coco_evaluate_value(
            gt,
            &gt_name,
            results,
            iou_type,
            &MMDET_MAX_DETS,
        )?)
    };
    if s.options.classwise {
        match &stats {
            Some(s) => tracing::info!(
                "{m} AP per category:\n{}",
                crate::metrics::coco::classwise_table(&s.per_category)
            ),
            None => tracing::info!("{m} AP per category: no detection to score"),
        }
    }
    let mut out = Metrics::new();
    for (i, name) in ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]
        .iter()
        .enumerate()
    {
        let v = stats.as_ref().map_or(0.0, |s| s.stats[i]);
        out.insert(format!("{m}_{name}"), v);
    }
    Ok(out)
}

/// Predicts and scores `dataset`; with `show_dir`, draws the detections.
pub fn evaluate<M: Detector>(
    model: &M,
    dataset: &DetDataset,
    views: &DetTestViews,
    device: &Device,
    metrics: &[String],
    options: &DetEvalOptions,
    process: Option<&SharedGroup>,
) -> Result<Metrics, DetError> {
    let mine = predict_share(model, dataset, views, device, process)?;
    let scored = gather_detections(process, dataset.len(), mine)?
        .map(|dets| score(dataset, &dets, metrics, options))
        .transpose()?;
    Ok(shared_metrics(process, scored)?)
}

/// Draws each image of this process's share with its detections above `score_thr`.
pub fn draw_share(
    dir: &Path,
    dataset: &DetDataset,
    share: &[(usize, Detections)],
    score_thr: f32,
) -> Result<(), DetError> {
    for (idx, d) in share {
        let s = &dataset.samples()[*idx];
        draw_detections(dir, &s.filename, &s.name, d, dataset.classes(), score_thr)?;
    }
    Ok(())
}

/// `evaluation.metric` (a name or a list; default `mAP`), each a registered detection metric.
pub fn config_metrics(cfg: &Config) -> Result<Vec<String>, TaskError> {
    let metrics = mona_core::task_setup::evaluation_metrics(cfg, "mAP")?;
    check_metric_names::<DetMetricEntry>("evaluation.metric", "detection", &metrics)?;
    Ok(metrics)
}
