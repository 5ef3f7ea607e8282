//! mmdet's `eval_map` (VOC style mAP): per class, detections of every image sorted by
//! descending score, greedy matching at `iou_thr` to the not-yet-covered ground truth,
//! ignore (difficult) boxes neither true nor false positives, area or 11-point AP.

use crate::ops::boxes::Box4;

/// How precision / recall become an AP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApMode {
    /// Area under the monotone precision envelope (VOC2010+).
    Area,
    /// Mean of the max precision at recall ≥ 0, 0.1, …, 1 (VOC2007).
    ElevenPoints,
}

/// The ground truth of one image (`labels` are class indices).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VocAnnotation {
    pub bboxes: Vec<Box4>,
    pub labels: Vec<usize>,
    /// Difficult / ignored boxes: matching them is neither a TP nor an FP.
    pub bboxes_ignore: Vec<Box4>,
    pub labels_ignore: Vec<usize>,
}

/// One detection `[x1, y1, x2, y2, score]`.
pub type ScoredBox = [f32; 5];

/// Settings of [`eval_map`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapSettings {
    pub iou_thr: f32,
    pub mode: ApMode,
    /// VOC's `+1` in widths and heights (mmdet `use_legacy_coordinate`).
    pub legacy_coordinates: bool,
}

impl MapSettings {
    /// mmdet's VOC evaluation: IoU 0.5, legacy coordinates, 11 points for VOC2007.
    pub fn voc(year_2007: bool) -> Self {
        Self {
            iou_thr: 0.5,
            mode: if year_2007 {
                ApMode::ElevenPoints
            } else {
                ApMode::Area
            },
            legacy_coordinates: true,
        }
    }
}

/// The result of one class.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassAp {
    pub num_gts: usize,
    pub num_dets: usize,
    /// Recall at the last detection (0 without detections).
    pub recall: f64,
    pub ap: f64,
}

/// `mean_ap` over classes with ground truth, and every class.
#[derive(Debug, Clone, PartialEq)]
pub struct MapResult {
    pub mean_ap: f64,
    pub classes: Vec<ClassAp>,
}

fn iou(a: &Box4, b: &Box4, extra: f32) -> f32 {
    let area = |x: &Box4| (x[2] - x[0] + extra) * (x[3] - x[1] + extra);
    let w = (a[2].min(b[2]) - a[0].max(b[0]) + extra).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1]) + extra).max(0.0);
    let inter = w * h;
    inter / (area(a) + area(b) - inter).max(1e-6)
}

/// mmdet `tpfp_default` of one image and class: `(tp, fp)` per detection (input order).
fn tpfp(dets: &[ScoredBox], gts: &[Box4], ignore: &[Box4], s: &MapSettings) -> Vec<(u8, u8)> {
    let all: Vec<(Box4, bool)> = gts
        .iter()
        .map(|b| (*b, false))
        .chain(ignore.iter().map(|b| (*b, true)))
        .collect();
    if all.is_empty() {
        return vec![(0, 1); dets.len()];
    }
    let extra = if s.legacy_coordinates { 1.0 } else { 0.0 };
    let mut out = vec![(0u8, 0u8); dets.len()];
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&i, &j| dets[j][4].total_cmp(&dets[i][4]));
    let mut covered = vec![false; all.len()];
    for i in order {
        let b = [dets[i][0], dets[i][1], dets[i][2], dets[i][3]];
        let (best, best_iou) =
            all.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |acc, (k, g)| {
                    let v = iou(&b, &g.0, extra);
                    if v > acc.1 { (k, v) } else { acc }
                });
        if best_iou >= s.iou_thr {
            if !all[best].1 {
                if covered[best] {
                    out[i] = (0, 1);
                } else {
                    covered[best] = true;
                    out[i] = (1, 0);
                }
            }
        } else {
            out[i] = (0, 1);
        }
    }
    out
}

/// mmdet `average_precision` of one class.
/// Recalls are f64 (numpy divides the f32 counts by the integer GT count in f64),
/// precisions f32, as in mmdet.
pub fn average_precision(recalls: &[f64], precisions: &[f32], mode: ApMode) -> f64 {
    match mode {
        ApMode::Area => {
            let mut mrec = vec![0f64];
            mrec.extend(recalls.iter().copied());
            mrec.push(1.0);
            let mut mpre = vec![0f64];
            mpre.extend(precisions.iter().map(|&p| p as f64));
            mpre.push(0.0);
            for i in (1..mpre.len()).rev() {
                mpre[i - 1] = mpre[i - 1].max(mpre[i]);
            }
            (0..mrec.len() - 1)
                .filter(|&i| mrec[i + 1] != mrec[i])
                .map(|i| (mrec[i + 1] - mrec[i]) * mpre[i + 1])
                .sum()
        }
        ApMode::ElevenPoints => {
            let mut ap = 0.0;
            for k in 0..11 {
                let thr = k as f64 * 0.1;
                ap += recalls
                    .iter()
                    .zip(precisions)
                    .filter(|(r, _)| **r >= thr)
                    .map(|(_, &p)| p as f64)
                    .fold(0.0, f64::max);
            }
            ap / 11.0
        }
    }
}

/// mmdet `eval_map(det_results, annotations)` without scale ranges: `det_results[img][cls]`
/// holds that class's detections of the image.
pub fn eval_map(
    det_results: &[Vec<Vec<ScoredBox>>],
    annotations: &[VocAnnotation],
    num_classes: usize,
    s: &MapSettings,
) -> MapResult {
    let mut classes = Vec::with_capacity(num_classes);
    for c in 0..num_classes {
        let mut scored: Vec<(f32, u8, u8)> = Vec::new();
        let mut num_gts = 0;
        for (dets_img, ann) in det_results.iter().zip(annotations) {
            let dets = dets_img.get(c).map(Vec::as_slice).unwrap_or(&[]);
            let pick = |boxes: &[Box4], labels: &[usize]| -> Vec<Box4> {
                boxes
                    .iter()
                    .zip(labels)
                    .filter(|(_, l)| **l == c)
                    .map(|(b, _)| *b)
                    .collect()
            };
            let gts = pick(&ann.bboxes, &ann.labels);
            let ignore = pick(&ann.bboxes_ignore, &ann.labels_ignore);
            num_gts += gts.len();
            for (d, (tp, fp)) in dets.iter().zip(tpfp(dets, &gts, &ignore, s)) {
                scored.push((d[4], tp, fp));
            }
        }
        // stable sort by descending score over the images' concatenation
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let eps = f32::EPSILON;
        let (mut tp, mut fp) = (0f32, 0f32);
        let (mut recalls, mut precisions) = (Vec::new(), Vec::new());
        for &(_, t, f) in &scored {
            tp += t as f32;
            fp += f as f32;
            recalls.push(tp as f64 / (num_gts as f64).max(eps as f64));
            precisions.push(tp / (tp + fp).max(eps));
        }
        classes.push(ClassAp {
            num_gts,
            num_dets: scored.len(),
            recall: recalls.last().copied().unwrap_or(0.0),
            ap: average_precision(&recalls, &precisions, s.mode),
        });
    }
    let aps: Vec<f64> = classes
        .iter()
        .filter(|c| c.num_gts > 0)
        .map(|c| c.ap)
        .collect();
    let mean_ap = if aps.is_empty() {
        0.0
    } else {
        aps.iter().sum::<f64>() / aps.len() as f64
    };
    MapResult { mean_ap, classes }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(bboxes: Vec<Box4>, ignore: Vec<Box4>) -> VocAnnotation {
        VocAnnotation {
            labels: vec![0; bboxes.len()],
            labels_ignore: vec![0; ignore.len()],
            bboxes,
            bboxes_ignore: ignore,
        }
    }

    #[test]
    fn difficult_boxes_are_neither_tp_nor_fp() {
        // one GT, one difficult box; detections: on the difficult (0.9), on the GT (0.8),
        // a duplicate of the GT (0.7, FP), nothing (0.6, FP)
        let a = ann(vec![[0.0, 0.0, 9.0, 9.0]], vec![[50.0, 50.0, 59.0, 59.0]]);
        let dets = vec![vec![vec![
            [50.0, 50.0, 59.0, 59.0, 0.9],
            [0.0, 0.0, 9.0, 9.0, 0.8],
            [0.0, 0.0, 9.0, 8.0, 0.7],
            [100.0, 100.0, 110.0, 110.0, 0.6],
        ]]];
        let r = eval_map(&dets, &[a], 1, &MapSettings::voc(false));
        // ranked TP, FP, FP (difficult dropped): recall 1 at precision 1 → AP 1
        assert_eq!(r.classes[0].num_gts, 1);
        assert_eq!(r.classes[0].num_dets, 4);
        assert!((r.mean_ap - 1.0).abs() < 1e-12);
    }

    #[test]
    fn area_and_eleven_point_by_hand() {
        // 2 GTs; ranked: TP, FP, TP → recalls .5 .5 1, precisions 1 .5 .667
        let a = ann(vec![[0.0, 0.0, 9.0, 9.0], [20.0, 20.0, 29.0, 29.0]], vec![]);
        let dets = vec![vec![vec![
            [0.0, 0.0, 9.0, 9.0, 0.9],
            [60.0, 60.0, 69.0, 69.0, 0.8],
            [20.0, 20.0, 29.0, 29.0, 0.7],
        ]]];
        let area = eval_map(&dets, std::slice::from_ref(&a), 1, &MapSettings::voc(false));
        // 0.5·1 + 0.5·(2/3)
        assert!((area.mean_ap - (0.5 + 1.0 / 3.0)).abs() < 1e-6);
        let eleven = eval_map(&dets, &[a], 1, &MapSettings::voc(true));
        // recall thresholds 0..0.5 (6 points) → 1; 0.6..1.0 (5 points) → 2/3
        assert!((eleven.mean_ap - (6.0 + 5.0 * 2.0 / 3.0) / 11.0).abs() < 1e-6);
    }

    #[test]
    fn eleven_point_thresholds_are_numpy_aranges() {
        // 10 GTs, 3 found: recall 0.3 (f64) is below np.arange's 0.30000000000000004, so
        // only the thresholds 0, 0.1, 0.2 see precision 1
        let gts: Vec<Box4> = (0..10)
            .map(|i| {
                let x = 20.0 * i as f32;
                [x, 0.0, x + 9.0, 9.0]
            })
            .collect();
        let dets: Vec<ScoredBox> = gts[..3]
            .iter()
            .enumerate()
            .map(|(i, b)| [b[0], b[1], b[2], b[3], 0.9 - 0.1 * i as f32])
            .collect();
        let r = eval_map(
            &[vec![dets]],
            &[ann(gts, vec![])],
            1,
            &MapSettings::voc(true),
        );
        assert!((r.mean_ap - 3.0 / 11.0).abs() < 1e-12, "{}", r.mean_ap);
        assert!((r.classes[0].recall - 0.3).abs() < 1e-12);
    }

    #[test]
    fn legacy_coordinates_add_one() {
        // boxes [0,0,1,1] and [1,1,2,2]: IoU 0 without +1, 1/7 with +1
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[1.0, 1.0, 2.0, 2.0], 0.0), 0.0);
        let v = iou(&[0.0, 0.0, 1.0, 1.0], &[1.0, 1.0, 2.0, 2.0], 1.0);
        assert!((v - 1.0 / 7.0).abs() < 1e-6);
    }

    #[test]
    fn classes_without_gt_are_skipped_and_no_gt_means_fp() {
        let a = ann(vec![[0.0, 0.0, 9.0, 9.0]], vec![]);
        // class 1 has a detection but no GT: its AP is 0 and it is left out of the mean
        let dets = vec![vec![
            vec![[0.0, 0.0, 9.0, 9.0, 0.9]],
            vec![[0.0, 0.0, 9.0, 9.0, 0.9]],
        ]];
        let r = eval_map(&dets, &[a], 2, &MapSettings::voc(false));
        assert_eq!(r.classes[1].ap, 0.0);
        assert!((r.mean_ap - 1.0).abs() < 1e-12);
    }
}
