//! What a COCO results list must be before it is scored, as pycocotools insists (and hotcoco
//! does not): a list of objects with numeric scores, well-formed RLEs of their image's size,
//! image and category ids of the ground truth.

use std::path::Path;

use hotcoco::COCO;

use super::coco_types::{CocoEvalError, CocoIouType};

/// What pycocotools' `loadRes` and `evaluate` insist on before hotcoco reads the file: a
/// JSON list of objects (`results in not an array of objects`), each with a numeric `score`
/// (a `KeyError` there). hotcoco is lenient about both: an object instead of a list reads as
/// no results (mAP 0), and a missing or null score as 1.0 (a perfect ranking).
/// For `segm`, every result's RLE must be well formed and of its image's size (pycocotools
/// would fail deep inside its C code, or score garbage).
pub(super) fn check_results_shape(
    results: &Path,
    gt: &COCO,
    iou_type: CocoIouType,
) -> Result<(), CocoEvalError> {
    let invalid = invalid_results(results);
    let text = std::fs::read_to_string(results)
        .map_err(|e| invalid(format!("cannot read detection results: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("cannot read detection results: {e}")))?;
    check_results_value(&value, results, gt, iou_type)
}

/// An [`CocoEvalError::Invalid`] about the results `results` names.
fn invalid_results(results: &Path) -> impl Fn(String) -> CocoEvalError + '_ {
    move |message| CocoEvalError::Invalid {
        path: results.to_path_buf(),
        message,
    }
}

/// [`check_results_shape`] of results already in memory; `results` names them in messages.
pub(super) fn check_results_value(
    value: &serde_json::Value,
    results: &Path,
    gt: &COCO,
    iou_type: CocoIouType,
) -> Result<(), CocoEvalError> {
    let invalid = invalid_results(results);
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    };
    let serde_json::Value::Array(items) = value else {
        return Err(invalid(format!(
            "the results must be a JSON list of detections, found {}",
            kind(value)
        )));
    };
    let image_sizes: std::collections::HashMap<u64, (usize, usize)> = gt
        .dataset
        .images
        .iter()
        .map(|im| (im.id, (im.height as usize, im.width as usize)))
        .collect();
    for (i, item) in items.iter().enumerate() {
        let serde_json::Value::Object(fields) = item else {
            return Err(invalid(format!(
                "result {i} must be an object, found {}",
                kind(item)
            )));
        };
        match fields.get("score") {
            None => return Err(invalid(format!("result {i} has no `score`"))),
            Some(serde_json::Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "result {i}: `score` must be a finite number, found {}",
                    kind(other)
                )));
            }
        }
        if iou_type == CocoIouType::Segm
            && let Some(serde_json::Value::Object(rle)) = fields.get("segmentation")
        {
            let image = fields.get("image_id").and_then(serde_json::Value::as_u64);
            if let Some(&(height, width)) = image.and_then(|id| image_sizes.get(&id)) {
                crate::datasets::parse_rle(rle, height, width)
                    .map_err(|e| invalid(format!("result {i}: `segmentation`: {e}")))?;
            }
        }
    }
    Ok(())
}

/// Checks, before evaluating, what pycocotools would fail on with an assertion or a
/// `KeyError` and hotcoco lets through (a warning on stderr at most): a result on an image not
/// in the annotations (`loadRes`: "Results do not correspond to current coco set"), a result
/// without the geometry the file's first result has (`loadRes` reads it from every one), a
/// ground-truth annotation without `segmentation` under `segm` (`annToRLE`). Box results
/// under `segm` are fine: both fill in the box polygon as the mask.
pub(super) fn validate(
    gt: &COCO,
    dt: &COCO,
    annotations: &Path,
    results: &Path,
    iou_type: CocoIouType,
) -> Result<(), CocoEvalError> {
    let invalid = |path: &Path, message: String| CocoEvalError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let images: std::collections::HashSet<u64> = gt.dataset.images.iter().map(|im| im.id).collect();
    let dts = &dt.dataset.annotations;
    let has_bbox = dts.first().is_some_and(|a| a.bbox.is_some());
    let has_segm = dts.first().is_some_and(|a| a.segmentation.is_some());
    for (i, a) in dts.iter().enumerate() {
        if !images.contains(&a.image_id) {
            return Err(invalid(
                results,
                format!(
                    "result {i} is on image {}, which is not in {}",
                    a.image_id,
                    annotations.display()
                ),
            ));
        }
        // hotcoco derives the other geometry from the one a result has, as pycocotools'
        // `loadRes` does, so every result has what the first one has unless it lacks the
        // geometry the file is made of
        let missing = if !has_bbox && !has_segm {
            Some(match iou_type {
                CocoIouType::Bbox => "bbox",
                CocoIouType::Segm => "segmentation",
            })
        } else if has_bbox && a.bbox.is_none() {
            Some("bbox")
        } else if has_segm && a.segmentation.is_none() {
            Some("segmentation")
        } else {
            None
        };
        if let Some(key) = missing {
            return Err(invalid(results, format!("result {i} has no `{key}`")));
        }
    }
    if iou_type == CocoIouType::Segm
        && let Some(a) = gt
            .dataset
            .annotations
            .iter()
            .find(|a| a.segmentation.is_none())
    {
        return Err(invalid(
            annotations,
            format!(
                "annotation {} has no `segmentation` (needed for --iou-type segm)",
                a.id
            ),
        ));
    }
    Ok(())
}
