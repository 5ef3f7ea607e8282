//! mmdet's `MaxIoUAssigner` on host boxes (IoU without `+1`, union clamped to 1e-6).

use crate::ops::boxes::{Box4, OverlapMode, bbox_overlaps};
use serde::Deserialize;

/// The `assigner` config of mmdet (`type = "MaxIoUAssigner"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaxIoUAssignerConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub pos_iou_thr: f32,
    /// A single upper bound (negatives are `0 ≤ IoU < neg_iou_thr`).
    pub neg_iou_thr: f32,
    #[serde(default)]
    pub min_pos_iou: f32,
    #[serde(default = "yes")]
    pub match_low_quality: bool,
    #[serde(default = "yes")]
    pub gt_max_assign_all: bool,
    #[serde(default = "minus_one")]
    pub ignore_iof_thr: f32,
    #[serde(default = "yes")]
    pub ignore_wrt_candidates: bool,
    #[serde(default = "minus_one")]
    pub gpu_assign_thr: f32,
    #[serde(default)]
    pub iou_calculator: Option<serde_json::Value>,
}

fn yes() -> bool {
    true
}
fn minus_one() -> f32 {
    -1.0
}

/// The result: `gt_inds` (−1 ignored, 0 negative, k > 0 → GT k − 1), `max_overlaps`,
/// `labels` (the GT label of positives, −1 otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct AssignResult {
    pub num_gts: usize,
    pub gt_inds: Vec<i64>,
    pub max_overlaps: Vec<f32>,
    pub labels: Vec<i64>,
}

impl AssignResult {
    pub fn num_positives(&self) -> usize {
        self.gt_inds.iter().filter(|&&g| g > 0).count()
    }
}

/// The assigner.
#[derive(Debug, Clone)]
pub struct MaxIoUAssigner {
    pub cfg: MaxIoUAssignerConfig,
}

impl MaxIoUAssigner {
    pub fn new(cfg: MaxIoUAssignerConfig) -> Self {
        Self { cfg }
    }

    /// `assign(priors, gt_bboxes, gt_labels, gt_bboxes_ignore)`.
    pub fn assign(
        &self,
        priors: &[Box4],
        gt_bboxes: &[Box4],
        gt_labels: &[i64],
        gt_bboxes_ignore: &[Box4],
    ) -> AssignResult {
        let (n, m) = (priors.len(), gt_bboxes.len());
        if m == 0 || n == 0 {
            return AssignResult {
                num_gts: m,
                gt_inds: vec![0; n],
                max_overlaps: vec![0.0; n],
                labels: vec![-1; n],
            };
        }
        // overlaps (gt, prior)
        let mut ov = bbox_overlaps(gt_bboxes, priors, OverlapMode::Iou);
        let c = &self.cfg;
        if c.ignore_iof_thr > 0.0 && !gt_bboxes_ignore.is_empty() {
            for (j, p) in priors.iter().enumerate() {
                let iof = if c.ignore_wrt_candidates {
                    bbox_overlaps(&[*p], gt_bboxes_ignore, OverlapMode::Iof)
                } else {
                    bbox_overlaps(gt_bboxes_ignore, &[*p], OverlapMode::Iof)
                };
                let max_iof = iof.into_iter().fold(f32::NEG_INFINITY, f32::max);
                if max_iof > c.ignore_iof_thr {
                    for i in 0..m {
                        ov[i * n + j] = -1.0;
                    }
                }
            }
        }
        // per prior: max over gts (first argmax on ties)
        let mut max_overlaps = vec![f32::NEG_INFINITY; n];
        let mut argmax = vec![0usize; n];
        for i in 0..m {
            for j in 0..n {
                if ov[i * n + j] > max_overlaps[j] {
                    max_overlaps[j] = ov[i * n + j];
                    argmax[j] = i;
                }
            }
        }
        let mut gt_inds = vec![-1i64; n];
        for j in 0..n {
            if max_overlaps[j] >= 0.0 && max_overlaps[j] < c.neg_iou_thr {
                gt_inds[j] = 0;
            }
            if max_overlaps[j] >= c.pos_iou_thr {
                gt_inds[j] = argmax[j] as i64 + 1;
            }
        }
        if c.match_low_quality {
            for i in 0..m {
                let row = &ov[i * n..(i + 1) * n];
                let (best_j, best) =
                    row.iter()
                        .enumerate()
                        .fold(
                            (0, f32::NEG_INFINITY),
                            |(bj, b), (j, &v)| {
                                if v > b { (j, v) } else { (bj, b) }
                            },
                        );
                if best >= c.min_pos_iou {
                    if c.gt_max_assign_all {
                        for (j, &v) in row.iter().enumerate() {
                            if v == best {
                                gt_inds[j] = i as i64 + 1;
                            }
                        }
                    } else {
                        gt_inds[best_j] = i as i64 + 1;
                    }
                }
            }
        }
        let labels = gt_inds
            .iter()
            .map(|&g| {
                if g > 0 {
                    gt_labels.get(g as usize - 1).copied().unwrap_or(-1)
                } else {
                    -1
                }
            })
            .collect();
        AssignResult {
            num_gts: m,
            gt_inds,
            max_overlaps,
            labels,
        }
    }
}
