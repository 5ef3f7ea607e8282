//! COCO box / mask AP through `hotcoco` (a faithful pycocotools port), with mmdet's
//! defaults: `maxDets = [100, 300, 1000]` and the 12 summary statistics.

use std::path::{Path, PathBuf};

use hotcoco::{COCO, COCOeval, IouType};

/// mmdet's `proposal_nums` for COCO evaluation.
pub const MMDET_MAX_DETS: [usize; 3] = [100, 300, 1000];

/// Names of the 12 statistics as mmdet logs them, for the three `max_dets` caps
/// (`mAP`, …, `AR@100`, `AR@300`, `AR@1000`, `AR_s@1000`, … for mmdet's caps).
pub fn stat_names(max_dets: &[usize; 3]) -> [String; 12] {
    let [a, b, c] = max_dets.map(|d| d.to_string());
    [
        "mAP".into(),
        "mAP_50".into(),
        "mAP_75".into(),
        "mAP_s".into(),
        "mAP_m".into(),
        "mAP_l".into(),
        format!("AR@{a}"),
        format!("AR@{b}"),
        format!("AR@{c}"),
        format!("AR_s@{c}"),
        format!("AR_m@{c}"),
        format!("AR_l@{c}"),
    ]
}

/// What is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CocoIouType {
    Bbox,
    Segm,
}

impl std::str::FromStr for CocoIouType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bbox" => Ok(Self::Bbox),
            "segm" => Ok(Self::Segm),
            other => Err(format!("unknown iou type `{other}` (bbox or segm)")),
        }
    }
}

/// A failed COCO evaluation, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CocoEvalError {
    #[error("{}: cannot read COCO annotations: {source}", path.display())]
    Annotations {
        path: PathBuf,
        source: hotcoco::Error,
    },
    #[error("{}: cannot read detection results: {source}", path.display())]
    Results {
        path: PathBuf,
        source: hotcoco::Error,
    },
    #[error("COCO evaluation failed: {0}")]
    Evaluate(hotcoco::Error),
    #[error("max_dets needs 3 values (small, medium, largest), got {0:?}")]
    MaxDets(Vec<usize>),
    #[error("COCO evaluation gave {0} statistics, expected 12")]
    Stats(usize),
}

/// The 12 statistics in pycocotools order, and the (sorted) caps they were computed with.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoStats {
    pub stats: [f64; 12],
    pub max_dets: [usize; 3],
}

impl CocoStats {
    /// `(name, value)` pairs with mmdet's names, in pycocotools order.
    pub fn named(&self) -> Vec<(String, f64)> {
        stat_names(&self.max_dets)
            .into_iter()
            .zip(self.stats)
            .collect()
    }

    /// A JSON object of [`Self::named`], keys in pycocotools order.
    pub fn to_json_string(&self) -> String {
        let fields: Vec<String> = self
            .named()
            .into_iter()
            .map(|(k, v)| format!("  \"{k}\": {}", serde_json::json!(v)))
            .collect();
        format!("{{\n{}\n}}", fields.join(",\n"))
    }
}

/// Evaluates already loaded ground truth and detections.
pub fn coco_evaluate(
    gt: COCO,
    dt: COCO,
    iou_type: CocoIouType,
    max_dets: &[usize],
) -> Result<CocoStats, CocoEvalError> {
    let Ok(mut sorted) = <[usize; 3]>::try_from(max_dets) else {
        return Err(CocoEvalError::MaxDets(max_dets.to_vec()));
    };
    sorted.sort_unstable();
    let iou = match iou_type {
        CocoIouType::Bbox => IouType::Bbox,
        CocoIouType::Segm => IouType::Segm,
    };
    let mut ev = COCOeval::new(gt, dt, iou);
    ev.params.max_dets = max_dets.to_vec();
    ev.evaluate().map_err(CocoEvalError::Evaluate)?;
    ev.accumulate();
    // the summary table goes to the log, never to stdout (tools print JSON there)
    for line in ev.summarize_lines() {
        tracing::info!("{line}");
    }
    let stats = ev.stats().unwrap_or(&[]);
    let stats: [f64; 12] = stats
        .try_into()
        .map_err(|_| CocoEvalError::Stats(stats.len()))?;
    Ok(CocoStats {
        stats,
        max_dets: sorted,
    })
}

/// Evaluates a results json (a list of `{image_id, category_id, bbox | segmentation, score}`)
/// against a COCO annotation file.
pub fn coco_evaluate_files(
    annotations: &Path,
    results: &Path,
    iou_type: CocoIouType,
    max_dets: &[usize],
) -> Result<CocoStats, CocoEvalError> {
    let gt = COCO::new(annotations).map_err(|source| CocoEvalError::Annotations {
        path: annotations.to_path_buf(),
        source,
    })?;
    let dt = gt
        .load_res(results)
        .map_err(|source| CocoEvalError::Results {
            path: results.to_path_buf(),
            source,
        })?;
    coco_evaluate(gt, dt, iou_type, max_dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GT: &str = r#"{
      "images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
      "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
      "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 60, 60], "area": 3600, "iscrowd": 0}
      ]
    }"#;

    #[test]
    fn perfect_detections_score_one_and_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("mona-det-coco-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let gt = dir.join("gt.json");
        let res = dir.join("res.json");
        std::fs::write(&gt, GT).expect("write gt");
        std::fs::write(
            &res,
            r#"[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
                {"image_id": 2, "category_id": 2, "bbox": [0, 0, 60, 60], "score": 0.8},
                {"image_id": 2, "category_id": 1, "bbox": [70, 70, 20, 20], "score": 0.1}]"#,
        )
        .expect("write results");
        let s = coco_evaluate_files(&gt, &res, CocoIouType::Bbox, &MMDET_MAX_DETS).expect("eval");
        // AP 1 for both classes (the false positive ranks below the only TP of class a)
        assert!((s.stats[0] - 1.0).abs() < 1e-9, "{:?}", s.stats);
        assert!((s.stats[1] - 1.0).abs() < 1e-9);
        assert!((s.stats[6] - 1.0).abs() < 1e-9);
        let json: serde_json::Value =
            serde_json::from_str(&s.to_json_string()).expect("valid json");
        assert!((json["mAP_50"].as_f64().unwrap_or(0.0) - 1.0).abs() < 1e-9);
        assert!(json["AR_l@1000"].is_number());
        assert_eq!(json.as_object().map(|m| m.len()), Some(12));
        let missing = dir.join("nope.json");
        let err = coco_evaluate_files(&missing, &res, CocoIouType::Bbox, &MMDET_MAX_DETS)
            .expect_err("missing file");
        assert!(err.to_string().contains("nope.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
