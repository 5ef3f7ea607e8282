//! The box head of each Cascade R-CNN stage: mmdet 2.x `ConvFCBBoxHead` and its presets
//! `Shared2FCBBoxHead` (2 shared fcs) and `Shared4Conv1FCBBoxHead` (4 shared convs + 1 fc)
//! (`mmdet/models/roi_heads/bbox_heads/{convfc_bbox_head.py,bbox_head.py}`, mmdet 2.11 as
//! used by Swin-Transformer-Object-Detection).
//!
//! The learnt part is [`ConvFcBBoxHead`] (parameters named as mmdet's state dict:
//! `shared_convs.0.conv.weight`, `shared_convs.0.bn.*`, `shared_fcs.0.weight`, `fc_cls.*`,
//! `fc_reg.*`). Everything else of mmdet's `BBoxHead` — `get_targets`, `loss`,
//! `refine_bboxes` / `regress_by_class` and `get_bboxes` with `multiclass_nms` — lives in the
//! plain [`BBoxHeadLogic`], which works on host data (RoIs and targets never need
//! gradients) and on the two output tensors.

use crate::ops::boxes::Box4;
use crate::ops::nms::batched_nms;
use burn::module::Module;
use burn::tensor::activation::{log_softmax, relu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use mona_core::nn::{ConvModule, Linear, NormCfg, init};
use serde::Deserialize;

use super::roi_align::{OutputSize, Roi};
use crate::coder::{DeltaCoderConfig, DeltaXYWHBBoxCoder};
use crate::losses::giou_loss;
use crate::retina::{Detections, NmsConfig};
use crate::rpn::{CrossEntropyLossConfig, smooth_l1};
use crate::sampler::SamplingResult;

/// `loss_bbox`: `SmoothL1Loss` (`beta`), `L1Loss` or `GIoULoss` (`eps`), each with
/// `loss_weight`; only the default `reduction = 'mean'` (with mmdet's `avg_factor`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BBoxLossConfig {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "one")]
    pub beta: f32,
    #[serde(default = "giou_eps")]
    pub eps: f64,
    #[serde(default = "mean")]
    pub reduction: String,
    #[serde(default = "one")]
    pub loss_weight: f32,
}

/// mmdet 2.x `BBoxHead` default: `SmoothL1Loss(beta=1.0, loss_weight=1.0)`.
impl Default for BBoxLossConfig {
    fn default() -> Self {
        Self {
            kind: "SmoothL1Loss".into(),
            beta: 1.0,
            eps: giou_eps(),
            reduction: mean(),
            loss_weight: 1.0,
        }
    }
}

/// `test_cfg.rcnn` (what `get_bboxes` / `multiclass_nms` read; `mask_thr_binary` belongs to
/// the mask head and is only carried).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RcnnTestConfig {
    #[serde(default)]
    pub score_thr: f32,
    pub nms: NmsConfig,
    #[serde(default = "hundred")]
    pub max_per_img: i64,
    #[serde(default)]
    pub mask_thr_binary: Option<f32>,
}

fn yes() -> bool {
    true
}
fn one() -> f32 {
    1.0
}
fn giou_eps() -> f64 {
    1e-6
}
fn mean() -> String {
    "mean".into()
}
fn hundred() -> i64 {
    100
}
fn c256() -> usize {
    256
}
fn c1024() -> usize {
    1024
}
fn seven() -> OutputSize {
    OutputSize::Square(7)
}
fn eighty() -> usize {
    80
}
/// `BBoxHead`'s default coder: means 0, stds `[0.1, 0.1, 0.2, 0.2]`.
fn rcnn_coder() -> DeltaCoderConfig {
    DeltaCoderConfig {
        kind: Some("DeltaXYWHBBoxCoder".into()),
        target_stds: [0.1, 0.1, 0.2, 0.2],
        ..DeltaCoderConfig::default()
    }
}
/// `BBoxHead`'s default `CrossEntropyLoss(use_sigmoid=False, loss_weight=1.0)`.
fn softmax_ce() -> CrossEntropyLossConfig {
    CrossEntropyLossConfig {
        kind: Some("CrossEntropyLoss".into()),
        use_sigmoid: false,
        use_mask: false,
        loss_weight: 1.0,
    }
}

/// The `bbox_head` config (one stage of `roi_head.bbox_head`). `type` picks the defaults of
/// the shared layers: `ConvFCBBoxHead` (0 / 0, set them), `Shared2FCBBoxHead` (0 convs,
/// 2 fcs), `Shared4Conv1FCBBoxHead` (4 convs, 1 fc); the presets reject other counts, as
/// mmdet's constructors do.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BBoxHeadConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub num_shared_convs: Option<usize>,
    #[serde(default)]
    pub num_shared_fcs: Option<usize>,
    /// Separate cls / reg branches are not implemented: these must stay 0.
    #[serde(default)]
    pub num_cls_convs: usize,
    #[serde(default)]
    pub num_cls_fcs: usize,
    #[serde(default)]
    pub num_reg_convs: usize,
    #[serde(default)]
    pub num_reg_fcs: usize,
    #[serde(default = "c256")]
    pub in_channels: usize,
    #[serde(default = "c256")]
    pub conv_out_channels: usize,
    #[serde(default = "c1024")]
    pub fc_out_channels: usize,
    #[serde(default = "seven")]
    pub roi_feat_size: OutputSize,
    #[serde(default = "eighty")]
    pub num_classes: usize,
    /// Must be false (no average pooling before the fcs).
    #[serde(default)]
    pub with_avg_pool: bool,
    /// Must be true (both branches exist).
    #[serde(default = "yes")]
    pub with_cls: bool,
    #[serde(default = "yes")]
    pub with_reg: bool,
    #[serde(default = "rcnn_coder")]
    pub bbox_coder: DeltaCoderConfig,
    #[serde(default)]
    pub reg_class_agnostic: bool,
    #[serde(default)]
    pub reg_decoded_bbox: bool,
    /// Must be null (plain `Conv2d`).
    #[serde(default)]
    pub conv_cfg: Option<serde_json::Value>,
    #[serde(default)]
    /// `norm_cfg` of the shared convs: `BN`, or `SyncBN`, whose statistics span every
    /// data-parallel replica's RoIs (see [`mona_core::nn::BatchNormKind`]).
    pub norm_cfg: Option<NormCfg>,
    #[serde(default = "softmax_ce")]
    pub loss_cls: CrossEntropyLossConfig,
    #[serde(default)]
    pub loss_bbox: BBoxLossConfig,
}

/// Why a box head cannot be built or used.
#[derive(Debug, thiserror::Error)]
pub enum BBoxHeadError {
    #[error(
        "bbox_head.type `{0}` is not one of ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead"
    )]
    Type(String),
    #[error("bbox_head: {kind} fixes {field} = {fixed}, the config sets {given}")]
    Preset {
        kind: String,
        field: &'static str,
        fixed: usize,
        given: usize,
    },
    #[error("bbox_head: {0} is not supported")]
    Unsupported(String),
    #[error("bbox_head.norm_cfg.type `{0}`: only BN / SyncBN are supported")]
    Norm(String),
    #[error(
        "bbox_head.loss_cls: the box head needs the softmax cross entropy (use_sigmoid = false)"
    )]
    SigmoidCls,
    #[error("bbox_head.loss_bbox.type `{0}`: only SmoothL1Loss, L1Loss and GIoULoss are supported")]
    LossBbox(String),
    #[error("bbox_head: {what} has {got} rows, expected {expected}")]
    Rows {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("bbox_head: positive {0} of a sampling result has no gt label")]
    NoLabel(usize),
    #[error("bbox_head: RoI {0} names image {1}, but only {2} images were given")]
    Image(usize, usize, usize),
}

/// The resolved layer layout of a config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    convs: usize,
    fcs: usize,
}

impl BBoxHeadConfig {
    /// Number of shared convs and fcs after the `type` preset, with mmdet's constraints.
    fn layout(&self) -> Result<Layout, BBoxHeadError> {
        let kind = self.kind.as_deref().unwrap_or("ConvFCBBoxHead");
        let preset = |convs: usize, fcs: usize| -> Result<Layout, BBoxHeadError> {
            for (field, fixed, given) in [
                ("num_shared_convs", convs, self.num_shared_convs),
                ("num_shared_fcs", fcs, self.num_shared_fcs),
            ] {
                if let Some(given) = given.filter(|&g| g != fixed) {
                    return Err(BBoxHeadError::Preset {
                        kind: kind.into(),
                        field,
                        fixed,
                        given,
                    });
                }
            }
            Ok(Layout { convs, fcs })
        };
        let layout = match kind {
            "ConvFCBBoxHead" => Layout {
                convs: self.num_shared_convs.unwrap_or(0),
                fcs: self.num_shared_fcs.unwrap_or(0),
            },
            "Shared2FCBBoxHead" => preset(0, 2)?,
            "Shared4Conv1FCBBoxHead" => preset(4, 1)?,
            other => return Err(BBoxHeadError::Type(other.into())),
        };
        let branches = [
            ("num_cls_convs", self.num_cls_convs),
            ("num_cls_fcs", self.num_cls_fcs),
            ("num_reg_convs", self.num_reg_convs),
            ("num_reg_fcs", self.num_reg_fcs),
        ];
        if let Some((name, n)) = branches.iter().find(|(_, n)| *n > 0) {
            return Err(BBoxHeadError::Unsupported(format!(
                "{name} = {n} (separate cls / reg branches)"
            )));
        }
        // Without a shared fc mmdet's fc_cls would see the unflattened conv channels: a
        // broken layout there too.
        if layout.fcs == 0 {
            return Err(BBoxHeadError::Unsupported(
                "num_shared_fcs = 0 (the fc_cls / fc_reg inputs need a shared fc)".into(),
            ));
        }
        if self.with_avg_pool {
            return Err(BBoxHeadError::Unsupported("with_avg_pool = true".into()));
        }
        if !self.with_cls || !self.with_reg {
            return Err(BBoxHeadError::Unsupported(
                "with_cls / with_reg = false".into(),
            ));
        }
        if self.conv_cfg.as_ref().is_some_and(|c| !c.is_null()) {
            return Err(BBoxHeadError::Unsupported("conv_cfg".into()));
        }
        if let Some(norm) = &self.norm_cfg {
            if norm.batch_norm_kind().is_none() {
                return Err(BBoxHeadError::Norm(norm.type_name.clone()));
            }
            if !norm.requires_grad {
                return Err(BBoxHeadError::Unsupported(
                    "norm_cfg.requires_grad = false".into(),
                ));
            }
        }
        if self.loss_cls.use_sigmoid || self.loss_cls.use_mask {
            return Err(BBoxHeadError::SigmoidCls);
        }
        match self.loss_bbox.kind.as_str() {
            "SmoothL1Loss" | "L1Loss" | "GIoULoss" => {}
            other => return Err(BBoxHeadError::LossBbox(other.into())),
        }
        if self.loss_bbox.reduction != "mean" {
            return Err(BBoxHeadError::Unsupported(format!(
                "loss_bbox.reduction = {}",
                self.loss_bbox.reduction
            )));
        }
        Ok(layout)
    }

    /// Columns of `bbox_pred`: 4 when class-agnostic, else `4 · num_classes`.
    pub fn reg_dim(&self) -> usize {
        if self.reg_class_agnostic {
            4
        } else {
            4 * self.num_classes
        }
    }
}

/// The learnt layers of the head.
#[derive(Module, Debug)]
pub struct ConvFcBBoxHead {
    pub shared_convs: Vec<ConvModule>,
    pub shared_fcs: Vec<Linear>,
    pub fc_cls: Linear,
    pub fc_reg: Linear,
    num_classes: usize,
}

/// `nn.Linear` with mmdet 2.11's `ConvFCBBoxHead.init_weights`: xavier-uniform weight
/// (bound √(6 / (in + out))), bias 0.
fn xavier_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let bound = (6.0 / (d_in + d_out) as f64).sqrt();
    Linear {
        weight: init::uniform([d_out, d_in], bound, device),
        bias: Some(init::constant([d_out], 0.0, device)),
    }
}

impl ConvFcBBoxHead {
    /// The layers of `cfg` with mmdet's init: shared convs as mmcv `ConvModule`s (3×3, no
    /// bias with a norm, kaiming-normal fan-out), shared fcs xavier-uniform, `fc_cls`
    /// N(0, 0.01²), `fc_reg` N(0, 0.001²), every bias 0.
    pub fn new(cfg: &BBoxHeadConfig, device: &Device) -> Result<Self, BBoxHeadError> {
        let layout = cfg.layout()?;
        let norm = cfg.norm_cfg.as_ref().and_then(NormCfg::batch_norm_kind);
        let shared_convs = (0..layout.convs)
            .map(|i| {
                let c_in = if i == 0 {
                    cfg.in_channels
                } else {
                    cfg.conv_out_channels
                };
                ConvModule::new(c_in, cfg.conv_out_channels, 3, norm, device)
            })
            .collect();
        let channels = if layout.convs > 0 {
            cfg.conv_out_channels
        } else {
            cfg.in_channels
        };
        let [h, w] = cfg.roi_feat_size.hw();
        let shared_fcs = (0..layout.fcs)
            .map(|i| {
                let d_in = if i == 0 {
                    channels * h * w
                } else {
                    cfg.fc_out_channels
                };
                xavier_linear(d_in, cfg.fc_out_channels, device)
            })
            .collect();
        let last = cfg.fc_out_channels;
        let normal = |d_out: usize, std: f64| Linear {
            weight: init::normal([d_out, last], std, device),
            bias: Some(init::constant([d_out], 0.0, device)),
        };
        Ok(Self {
            shared_convs,
            shared_fcs,
            fc_cls: normal(cfg.num_classes + 1, 0.01),
            fc_reg: normal(cfg.reg_dim(), 0.001),
            num_classes: cfg.num_classes,
        })
    }

    /// `ConvFCBBoxHead.forward` on RoI features `(n, C, h, w)`: shared convs (BN with batch
    /// statistics when `training`), flatten in `(c, h, w)` order, shared fcs + ReLU, then
    /// `(cls_score (n, num_classes + 1), bbox_pred (n, 4·num_classes or 4))`.
    ///
    /// No RoIs give empty outputs without running the layers (batch statistics of an empty
    /// batch would turn the BN running statistics into NaN).
    pub fn forward(&self, x: Tensor<4>, training: bool) -> (Tensor<2>, Tensor<2>) {
        if x.dims()[0] == 0 {
            let device = x.device();
            return (
                Tensor::zeros([0, self.fc_cls.d_out()], &device),
                Tensor::zeros([0, self.fc_reg.d_out()], &device),
            );
        }
        let mut x = x;
        for conv in &self.shared_convs {
            x = conv.forward(x, training);
        }
        let [n, c, h, w] = x.dims();
        let mut x: Tensor<2> = x.reshape([n, c * h * w]);
        for fc in &self.shared_fcs {
            x = relu(fc.forward(x));
        }
        (self.fc_cls.forward(x.clone()), self.fc_reg.forward(x))
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }
}

/// mmdet's `bbox2roi`: the boxes of every image as `[batch_idx, x1, y1, x2, y2]`, images in
/// order.
pub fn bbox2roi(per_image_boxes: &[Vec<Box4>]) -> Vec<Roi> {
    per_image_boxes
        .iter()
        .enumerate()
        .flat_map(|(i, boxes)| {
            boxes
                .iter()
                .map(move |b| [i as f32, b[0], b[1], b[2], b[3]])
        })
        .collect()
}

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
    pub fn new(cfg: &BBoxHeadConfig) -> Result<Self, BBoxHeadError> {
        cfg.layout()?;
        Ok(Self {
            coder: DeltaXYWHBBoxCoder::new(cfg.bbox_coder.clone()),
            cfg: cfg.clone(),
        })
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
        let mut boxes = self.coder.decode_rows(rois, &deltas, Some(img_shape));
        if let Some(s) = scale_factor {
            for (j, v) in boxes.iter_mut().enumerate() {
                *v /= s[j % 4];
            }
        }
        Ok(multiclass_nms(
            &boxes,
            &scores,
            c,
            cfg.score_thr,
            cfg.nms.iou_threshold,
            cfg.max_per_img,
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

/// Builds one stage's box head and its logic; the detectors build box heads only through
/// [`BBoxHeadEntry`].
pub type BBoxHeadBuilder =
    fn(&BBoxHeadConfig, &Device) -> Result<(ConvFcBBoxHead, BBoxHeadLogic), BBoxHeadError>;

mona_core::declare_registry! {
    /// Box heads of RoI head stages, selected by `model.roi_head.bbox_head[i].type`.
    pub struct BBoxHeadEntry: "bbox head" => BBoxHeadBuilder;
}

/// mmdet's `ConvFCBBoxHead` and its presets: the layout comes from the `type` in `cfg`.
fn build_conv_fc(
    cfg: &BBoxHeadConfig,
    device: &Device,
) -> Result<(ConvFcBBoxHead, BBoxHeadLogic), BBoxHeadError> {
    Ok((ConvFcBBoxHead::new(cfg, device)?, BBoxHeadLogic::new(cfg)?))
}

inventory::submit! { BBoxHeadEntry::new("ConvFCBBoxHead", build_conv_fc) }
inventory::submit! { BBoxHeadEntry::new("Shared2FCBBoxHead", build_conv_fc) }
inventory::submit! { BBoxHeadEntry::new("Shared4Conv1FCBBoxHead", build_conv_fc) }
