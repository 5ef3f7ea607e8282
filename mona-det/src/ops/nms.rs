//! Non-maximum suppression with mmcv's semantics (host side): boxes sorted by descending
//! score (stable for ties), a later box is suppressed when its IoU with a kept one is **>**
//! the threshold, areas `(x2 − x1)·(y2 − y1)` (offset 0). Kept indices come back in
//! descending-score order.

use super::boxes::Box4;

fn iou_no_eps(a: &Box4, b: &Box4) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// Indices sorted by descending score (NaN last, ties by index).
pub fn argsort_desc(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&i, &j| {
        scores[j]
            .partial_cmp(&scores[i])
            .unwrap_or_else(|| scores[i].is_nan().cmp(&scores[j].is_nan()))
    });
    order
}

/// `mmcv.ops.nms`: kept indices into `boxes`, by descending score.
pub fn nms(boxes: &[Box4], scores: &[f32], iou_thr: f32) -> Vec<usize> {
    let n = boxes.len().min(scores.len());
    let order = argsort_desc(&scores[..n]);
    let mut suppressed = vec![false; n];
    let mut keep = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        for &j in &order[pos + 1..] {
            if !suppressed[j] && iou_no_eps(&boxes[i], &boxes[j]) > iou_thr {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// `mmcv.ops.batched_nms` (class-aware, `class_agnostic=False`): boxes of different labels
/// never suppress each other, through the `label · (max_coord + 1)` offset of every box.
pub fn batched_nms(boxes: &[Box4], scores: &[f32], labels: &[usize], iou_thr: f32) -> Vec<usize> {
    if boxes.is_empty() {
        return Vec::new();
    }
    let max_coord = boxes
        .iter()
        .flat_map(|b| b.iter().copied())
        .fold(f32::NEG_INFINITY, f32::max);
    let shifted: Vec<Box4> = boxes
        .iter()
        .zip(labels)
        .map(|(b, &l)| {
            let off = l as f32 * (max_coord + 1.0);
            [b[0] + off, b[1] + off, b[2] + off, b[3] + off]
        })
        .collect();
    nms(&shifted, scores, iou_thr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_strictly_above_threshold() {
        let boxes = [
            [0.0, 0.0, 10.0, 10.0],
            [0.0, 0.0, 10.0, 5.0], // IoU 0.5 with the first: kept (not > 0.5)
            [0.0, 0.0, 10.0, 9.0], // IoU 0.9: suppressed
            [20.0, 20.0, 30.0, 30.0],
        ];
        let scores = [0.9, 0.5, 0.8, 0.1];
        assert_eq!(nms(&boxes, &scores, 0.5), vec![0, 1, 3]);
        // the 0.9 overlap is with a box of another label: kept
        assert_eq!(
            batched_nms(&boxes, &scores, &[0, 0, 1, 0], 0.5),
            vec![0, 2, 1, 3]
        );
    }
}
