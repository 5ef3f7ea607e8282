//! mmdet's `BBoxHead` beyond the learnt layers: `get_targets`, `loss`, `refine_bboxes` /
//! `regress_by_class` and `get_bboxes` with `multiclass_nms`, on host data (RoIs and targets
//! never need gradients) and the head's two output tensors.

use burn::tensor::activation::{log_softmax, softmax};
use burn::tensor::{Int, Tensor, TensorData};

use super::bbox_config::{BBoxHeadConfig, BBoxHeadError, RcnnTestConfig};
use super::roi_align::Roi;
use crate::coder::DeltaXYWHBBoxCoder;
use crate::losses::giou_loss;
use crate::ops::boxes::Box4;
use crate::ops::nms::batched_nms;
use crate::retina::Detections;
use crate::rpn::smooth_l1;
use crate::sampler::SamplingResult;

/// `BBoxHead.get_targets` of a batch: one row per sampled RoI, images in order and within an
/// image positives then negatives (the rows of `bbox2roi([res.bboxes for res in ...])`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BBoxTargets {
    /// GT label of positives, `num_classes` (background) for negatives.
    pub labels: Vec<usize>,
    /// `pos_weight` for positives, 1 for negatives.
    pub label_weights: Vec<f32>,
    /// Encoded deltas of positives (the GT box itself with `reg_decoded_bbox`), 0 for
    /// negatives.
    pub bbox_targets: Vec<[f32; 4]>,
    /// 1 for positives, 0 for negatives (mmdet's `(n, 4)` weights have equal columns).
    pub bbox_weights: Vec<f32>,
}

/// The losses of one stage, before `stage_loss_weights`.
#[derive(Debug, Clone)]
pub struct BBoxLosses {
    pub loss_cls: Tensor<1>,
    pub loss_bbox: Tensor<1>,
    /// Top-1 accuracy over all sampled RoIs, in percent (mmdet's `acc`, a host float).
    pub acc: f32,
}

/// The non-learnt part of the head: coder, targets, loss, refinement and post-processing.
#[derive(Debug, Clone)]
pub struct BBoxHeadLogic {
    pub cfg: BBoxHeadConfig,
    pub coder: DeltaXYWHBBoxCoder,
}

impl BBoxHeadLogic {
    /// The logic of a `ConvFCBBoxHead` (or preset) stage; the config's layout is checked.
    pub fn new(cfg: &BBoxHeadConfig) -> Result<Self, BBoxHeadError> {
        cfg.layout()?;
        Ok(Self::for_plugin_head(cfg))
    }

    /// The logic of a stage whose head is a plugin's, outputting `(cls_score, bbox_pred)` as
    /// `cfg` sizes them (`num_classes`, `reg_class_agnostic`); its layers are its own, so no
    /// layout of `ConvFCBBoxHead` is checked.
    pub fn for_plugin_head(cfg: &BBoxHeadConfig) -> Self {
        Self {
            coder: DeltaXYWHBBoxCoder::new(cfg.bbox_coder.clone()),
            cfg: cfg.clone(),
        }
    }

    pub fn num_classes(&self) -> usize {
        self.cfg.num_classes
    }

    /// `BBoxHead.get_targets(sampling_results, gt_bboxes, gt_labels, rcnn_train_cfg,
    /// concat=True)` with `_get_target_single` per image. `pos_weight` is the stage's
    /// `train_cfg.rcnn.pos_weight` (`≤ 0` means 1).
    pub fn targets(
        &self,
        results: &[SamplingResult],
        pos_weight: f32,
    ) -> Result<BBoxTargets, BBoxHeadError> {
        let pos_weight = if pos_weight <= 0.0 { 1.0 } else { pos_weight };
        let mut t = BBoxTargets::default();
        for res in results {
            for (k, (p, g)) in res.pos_bboxes.iter().zip(&res.pos_gt_bboxes).enumerate() {
                let label = res
                    .pos_gt_labels
                    .get(k)
                    .copied()
                    .filter(|&l| l >= 0)
                    .ok_or(BBoxHeadError::NoLabel(k))?;
                t.labels.push(label as usize);
                t.label_weights.push(pos_weight);
                t.bbox_targets.push(if self.cfg.reg_decoded_bbox {
                    *g
                } else {
                    self.coder.encode(p, g)
                });
                t.bbox_weights.push(1.0);
            }
            let n = res.neg_bboxes.len();
            t.labels
                .extend(std::iter::repeat_n(self.cfg.num_classes, n));
            t.label_weights.extend(std::iter::repeat_n(1.0, n));
            t.bbox_targets.extend(std::iter::repeat_n([0.0; 4], n));
            t.bbox_weights.extend(std::iter::repeat_n(0.0, n));
        }
        Ok(t)
    }

    /// `BBoxHead.loss` (mmdet 2.11):
    /// * `loss_cls` = Σ label_weight · CE(softmax) / max(#(label_weight > 0), 1) ·
    ///   `loss_weight`;
    /// * `acc` = percentage of RoIs whose arg-max class is their label;
    /// * `loss_bbox` over the positives only (labels in `[0, num_classes)`), on the 4 columns
    ///   of the GT class (class-specific) — decoded against the RoI boxes first with
    ///   `reg_decoded_bbox` (`bbox_coder.decode(rois[:, 1:], bbox_pred)`, no `max_shape`) —
    ///   summed and divided by `avg_factor = bbox_targets.size(0)` (all sampled RoIs), times
    ///   `loss_weight`; with no positive it is `bbox_pred.sum() · 0`.
    ///
    /// mmdet 2.11 divides by the bare `avg_factor` (no float32 eps).
    pub fn loss(
        &self,
        cls_score: Tensor<2>,
        bbox_pred: Tensor<2>,
        rois: &[Roi],
        targets: &BBoxTargets,
    ) -> Result<BBoxLosses, BBoxHeadError> {
        let [n, k] = cls_score.dims();
        let c = self.cfg.num_classes;
        let check = |what, got, expected| {
            if got == expected {
                Ok(())
            } else {
                Err(BBoxHeadError::Rows {
                    what,
                    got,
                    expected,
                })
            }
        };
        check("cls_score columns", k, c + 1)?;
        check("bbox_pred", bbox_pred.dims()[0], n)?;
        check("bbox_pred columns", bbox_pred.dims()[1], self.cfg.reg_dim())?;
        check("rois", rois.len(), n)?;
        check("targets", targets.labels.len(), n)?;
        check("label_weights", targets.label_weights.len(), n)?;
        check("bbox_targets", targets.bbox_targets.len(), n)?;
        let device = cls_score.device();
        if n == 0 {
            return Ok(BBoxLosses {
                loss_cls: cls_score.sum() * 0.0,
                loss_bbox: bbox_pred.sum() * 0.0,
                acc: 0.0,
            });
        }

        // classification
        let labels: Vec<i64> = targets.labels.iter().map(|&l| l as i64).collect();
        let label_idx = Tensor::<2, Int>::from_data(TensorData::new(labels, [n, 1]), &device);
        let weights =
            Tensor::<1>::from_data(TensorData::new(targets.label_weights.clone(), [n]), &device);
        let avg_cls = targets
            .label_weights
            .iter()
            .filter(|&&w| w > 0.0)
            .count()
            .max(1) as f64;
        let picked = log_softmax(cls_score.clone(), 1)
            .gather(1, label_idx)
            .reshape([n]);
        let loss_cls = (picked * weights)
            .sum()
            .neg()
            .div_scalar(avg_cls)
            .mul_scalar(self.cfg.loss_cls.loss_weight);
        let acc = accuracy(&host(cls_score), k, &targets.labels);

        // regression, positives only
        let pos: Vec<usize> = (0..n).filter(|&i| targets.labels[i] < c).collect();
        let loss_bbox = if pos.is_empty() {
            bbox_pred.sum() * 0.0
        } else {
            let p = pos.len();
            let pos_idx = Tensor::<1, Int>::from_data(
                TensorData::new(pos.iter().map(|&i| i as i64).collect::<Vec<_>>(), [p]),
                &device,
            );
            let rows = bbox_pred.select(0, pos_idx);
            let pred = if self.cfg.reg_class_agnostic {
                rows
            } else {
                let cols: Vec<i64> = pos
                    .iter()
                    .flat_map(|&i| (0..4).map(move |j| (targets.labels[i] * 4 + j) as i64))
                    .collect();
                rows.gather(
                    1,
                    Tensor::<2, Int>::from_data(TensorData::new(cols, [p, 4]), &device),
                )
            };
            let boxes = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [p, 4]), &device);
            let target = boxes(pos.iter().flat_map(|&i| targets.bbox_targets[i]).collect());
            let pred = if self.cfg.reg_decoded_bbox {
                let pos_rois = boxes(
                    pos.iter()
                        .flat_map(|&i| [rois[i][1], rois[i][2], rois[i][3], rois[i][4]])
                        .collect(),
                );
                self.coder.decode_tensor(pos_rois, pred, None)
            } else {
                pred
            };
            let lb = &self.cfg.loss_bbox;
            let summed = match lb.kind.as_str() {
                "GIoULoss" => giou_loss(pred, target, lb.eps).sum(),
                "L1Loss" => (pred - target).abs().sum(),
                _ => smooth_l1(pred - target, lb.beta).sum(),
            };
            summed.div_scalar(n as f64).mul_scalar(lb.loss_weight)
        };
        Ok(BBoxLosses {
            loss_cls,
            loss_bbox,
            acc,
        })
    }

    /// `BBoxHead.regress_by_class` for the RoI boxes of one image: the 4 deltas of `labels[i]`
    /// (or the only 4 when class-agnostic) of row `i` of `bbox_pred` (row-major, `reg_dim`
    /// columns) decoded against `rois[i]` and clipped to `img_shape = (h, w)`.
    pub fn regress_by_class(
        &self,
        rois: &[Box4],
        labels: &[usize],
        bbox_pred: &[f32],
        img_shape: (usize, usize),
    ) -> Vec<Box4> {
        let dim = self.cfg.reg_dim();
        rois.iter()
            .enumerate()
            .map(|(i, roi)| {
                let off = if self.cfg.reg_class_agnostic {
                    0
                } else {
                    labels[i].min(self.cfg.num_classes.saturating_sub(1)) * 4
                };
                let d = &bbox_pred[i * dim + off..i * dim + off + 4];
                self.coder
                    .decode(roi, &[d[0], d[1], d[2], d[3]], Some(img_shape))
            })
            .collect()
    }

    /// The proposals of the next cascade stage, as `CascadeRoIHead.forward_train` builds
    /// them: RoI labels are the target labels, except background RoIs which take the
    /// arg-max of `cls_score[:, :num_classes]`; then `BBoxHead.refine_bboxes` regresses each
    /// RoI by that class (clipped to its image's `img_shape`) and drops, per image, the RoIs
    /// that were GT boxes added as proposals (`pos_is_gt[img]`, the image's first RoIs).
    pub fn refine_bboxes(
        &self,
        rois: &[Roi],
        roi_labels: &[usize],
        cls_score: Tensor<2>,
        bbox_pred: Tensor<2>,
        pos_is_gt: &[Vec<bool>],
        img_shapes: &[(usize, usize)],
    ) -> Result<Vec<Vec<Box4>>, BBoxHeadError> {
        let n = rois.len();
        let c = self.cfg.num_classes;
        let dim = self.cfg.reg_dim();
        let scores = host(cls_score);
        let deltas = host(bbox_pred);
        for (what, got, expected) in [
            ("roi_labels", roi_labels.len(), n),
            ("cls_score", scores.len(), n * (c + 1)),
            ("bbox_pred", deltas.len(), n * dim),
            ("pos_is_gt", pos_is_gt.len(), img_shapes.len()),
        ] {
            if got != expected {
                return Err(BBoxHeadError::Rows {
                    what,
                    got,
                    expected,
                });
            }
        }
        let labels: Vec<usize> = (0..n)
            .map(|i| {
                if roi_labels[i] == c {
                    argmax(&scores[i * (c + 1)..i * (c + 1) + c])
                } else {
                    roi_labels[i]
                }
            })
            .collect();
        let mut per_image: Vec<Vec<usize>> = vec![Vec::new(); img_shapes.len()];
        for (i, roi) in rois.iter().enumerate() {
            let img = roi[0] as usize;
            per_image
                .get_mut(img)
                .ok_or(BBoxHeadError::Image(i, img, img_shapes.len()))?
                .push(i);
        }
        Ok(per_image
            .iter()
            .enumerate()
            .map(|(img, idx)| {
                let boxes: Vec<Box4> = idx
                    .iter()
                    .map(|&i| [rois[i][1], rois[i][2], rois[i][3], rois[i][4]])
                    .collect();
                let lab: Vec<usize> = idx.iter().map(|&i| labels[i]).collect();
                let d: Vec<f32> = idx
                    .iter()
                    .flat_map(|&i| deltas[i * dim..(i + 1) * dim].iter().copied())
                    .collect();
                let refined = self.regress_by_class(&boxes, &lab, &d, img_shapes[img]);
                refined
                    .into_iter()
                    .enumerate()
                    .filter(|(j, _)| !pos_is_gt[img].get(*j).copied().unwrap_or(false))
                    .map(|(_, b)| b)
                    .collect()
            })
            .collect())
    }

    /// `BBoxHead.get_bboxes` of one image (mmdet 2.11) followed by `multiclass_nms`:
    /// softmax of the (stage-averaged) logits `cls_score (n, num_classes + 1)`, `bbox_pred`
    /// decoded against `rois` (`(n, 4)` boxes of this image) clipped to `img_shape`, divided
    /// by `scale_factor` (`[w, h, w, h]`) when given (`rescale=True`), then
    /// [`multiclass_nms`].
    pub fn predict(
        &self,
        rois: &[Box4],
        cls_score: Tensor<2>,
        bbox_pred: Tensor<2>,
        img_shape: (usize, usize),
        scale_factor: Option<[f32; 4]>,
        cfg: &RcnnTestConfig,
    ) -> Result<Detections, BBoxHeadError> {
        let (mut boxes, scores) = self.decode(rois, cls_score, bbox_pred, img_shape)?;
        if let Some(s) = scale_factor {
            for (j, v) in boxes.iter_mut().enumerate() {
                *v /= s[j % 4];
            }
        }
        Ok(multiclass_nms(
            &boxes,
            &scores,
            self.cfg.num_classes,
            cfg.score_thr,
            cfg.nms.iou_threshold,
            cfg.max_per_img,
        ))
    }

    /// `BBoxHead.get_bboxes(..., rescale=False, cfg=None)` of one image: the boxes (row-major
    /// `(n, 4)`, or `(n, 4·num_classes)` when the regression is per class) decoded against
    /// `rois` and clipped to `img_shape`, and the softmax scores `(n, num_classes + 1)`,
    /// before any NMS.
    pub fn decode(
        &self,
        rois: &[Box4],
        cls_score: Tensor<2>,
        bbox_pred: Tensor<2>,
        img_shape: (usize, usize),
    ) -> Result<(Vec<f32>, Vec<f32>), BBoxHeadError> {
        let n = rois.len();
        let c = self.cfg.num_classes;
        let dim = self.cfg.reg_dim();
        let scores = host(softmax(cls_score, 1));
        let deltas = host(bbox_pred);
        for (what, got, expected) in [
            ("cls_score", scores.len(), n * (c + 1)),
            ("bbox_pred", deltas.len(), n * dim),
        ] {
            if got != expected {
                return Err(BBoxHeadError::Rows {
                    what,
                    got,
                    expected,
                });
            }
        }
        Ok((
            self.coder.decode_rows(rois, &deltas, Some(img_shape)),
            scores,
        ))
    }
}

/// mmdet 2.11 `multiclass_nms(multi_bboxes, multi_scores, score_thr, nms_cfg, max_num)`:
/// `boxes` row-major `(n, 4·num_classes)` (or `(n, 4)`, shared by all classes), `scores`
/// `(n, num_classes + 1)` with the background last (dropped); every (RoI, class) pair with
/// score `> score_thr` is a candidate (row-major order), mmcv's class-aware `batched_nms`
/// keeps them by descending score, the first `max_num` (when `> 0`) are returned.
pub fn multiclass_nms(
    boxes: &[f32],
    scores: &[f32],
    num_classes: usize,
    score_thr: f32,
    iou_threshold: f32,
    max_num: i64,
) -> Detections {
    let k = num_classes + 1;
    let n = scores.len() / k;
    let per_class = n > 0 && boxes.len() / n > 4;
    let (mut cand_boxes, mut cand_scores, mut cand_labels) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        for c in 0..num_classes {
            let s = scores[i * k + c];
            if s > score_thr {
                let off = if per_class {
                    i * 4 * num_classes + 4 * c
                } else {
                    i * 4
                };
                cand_boxes.push([boxes[off], boxes[off + 1], boxes[off + 2], boxes[off + 3]]);
                cand_scores.push(s);
                cand_labels.push(c);
            }
        }
    }
    let mut keep = batched_nms(&cand_boxes, &cand_scores, &cand_labels, iou_threshold);
    if max_num > 0 {
        keep.truncate(max_num as usize);
    }
    Detections {
        bboxes: keep.iter().map(|&i| cand_boxes[i]).collect(),
        scores: keep.iter().map(|&i| cand_scores[i]).collect(),
        labels: keep.iter().map(|&i| cand_labels[i]).collect(),
        ..Detections::default()
    }
}

/// mmdet's `accuracy(pred, target)` (top-1, percent; 0 for no rows). Ties go to the first
/// maximum.
pub fn accuracy(scores: &[f32], cols: usize, labels: &[usize]) -> f32 {
    if labels.is_empty() || cols == 0 {
        return 0.0;
    }
    let correct = labels
        .iter()
        .enumerate()
        .filter(|&(i, &l)| argmax(&scores[i * cols..(i + 1) * cols]) == l)
        .count();
    correct as f32 * 100.0 / labels.len() as f32
}

/// Index of the first maximum (`torch.argmax` on the CPU).
pub(crate) fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// A tensor's values on the host, row-major.
pub(crate) fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}
