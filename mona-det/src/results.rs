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
    let records = dataset
        .samples()
        .iter()
        .zip(dets)
        .flat_map(|(s, d)| box_records(s.image_id, d, dataset.cat_ids()));
    serde_json::Value::Array(records.collect())
}

/// The COCO-style segmentation results (`[{image_id, category_id, bbox, score,
/// segmentation: {size, counts}}]`, mmdet's `_segm2json` with the box score as the mask
/// score) of detections that carry masks.
pub fn segm_results_json(dataset: &DetDataset, dets: &[Detections]) -> serde_json::Value {
    let records = dataset
        .samples()
        .iter()
        .zip(dets)
        .flat_map(|(s, d)| mask_records(s.image_id, d, dataset.cat_ids()));
    serde_json::Value::Array(records.collect())
}

/// The category id of `label`: the dataset's (COCO) id, or `label + 1` without one.
fn category_id(cat_ids: &[u64], label: usize) -> u64 {
    cat_ids.get(label).copied().unwrap_or(label as u64 + 1)
}

/// One image's box records of [`results_json`].
pub fn box_records(image_id: u64, d: &Detections, cat_ids: &[u64]) -> Vec<serde_json::Value> {
    d.bboxes
        .iter()
        .zip(&d.scores)
        .zip(&d.labels)
        .map(|((b, &score), &label)| {
            serde_json::json!({
                "image_id": image_id,
                "category_id": category_id(cat_ids, label),
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                "score": score,
            })
        })
        .collect()
}

/// One image's mask records of [`segm_results_json`].
pub fn mask_records(image_id: u64, d: &Detections, cat_ids: &[u64]) -> Vec<serde_json::Value> {
    d.bboxes
        .iter()
        .zip(&d.scores)
        .zip(&d.labels)
        .zip(&d.masks)
        .map(|(((b, &score), &label), mask)| {
            serde_json::json!({
                "image_id": image_id,
                "category_id": category_id(cat_ids, label),
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                "score": score,
                "segmentation": encode_rle(mask)
                    .ok()
                    .and_then(|rle| serde_json::to_value(rle).ok()),
            })
        })
        .collect()
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
