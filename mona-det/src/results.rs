//! Detections as COCO-style JSON: the results files of `test --out` / `--format-only`
//! (boxes, and RLE masks), and a dataset's annotations as COCO ground truth.

use std::path::Path;

use mona_data::Dataset;

use crate::data::DetDataset;
use crate::error::DetError;
use crate::retina::Detections;
use crate::roi::encode_rle;

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
pub fn coco_gt_json(dataset: &DetDataset) -> serde_json::Value {
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

/// Writes `value` to `path` atomically (a failed write leaves no partial file).
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), DetError> {
    let write_err = |source| DetError::Write {
        path: path.to_path_buf(),
        source,
    };
    let text = serde_json::to_string(value).map_err(|e| write_err(e.into()))?;
    mona_core::checkpoint::write_atomic_text(path, &text).map_err(write_err)
}
