//! mmdet 2.x's `RPNHead`: a 3×3 `rpn_conv` + ReLU shared over levels, `rpn_cls` (A sigmoid
//! logits per location) and `rpn_reg` (4A deltas); the loss on anchors assigned by MaxIoU and
//! drawn by the [`RandomSampler`] (sigmoid BCE + SmoothL1, both averaged over the sampled
//! anchors of the batch); and the proposals (`_get_bboxes`: per level top `nms_pre` by score,
//! decode, NMS with the level as the class so levels never suppress each other, first
//! `max_per_img`).

use crate::ops::boxes::Box4;
use crate::ops::nms::batched_nms;
use burn::module::Module;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor, TensorData};
use mona_core::nn::{Conv2d, init};
use serde::Deserialize;

use crate::anchor::{AnchorError, AnchorGenerator, AnchorGeneratorConfig};
use crate::assigner::{MaxIoUAssigner, MaxIoUAssignerConfig};
use crate::coder::{DeltaCoderConfig, DeltaXYWHBBoxCoder};
use crate::retina::{GtInstances, ImageMeta, NmsConfig};
use crate::sampler::{RandomSampler, RandomSamplerConfig, SamplerRng};

/// `loss_cls` (`CrossEntropyLoss`); the RPN needs `use_sigmoid = true`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CrossEntropyLossConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub use_sigmoid: bool,
    #[serde(default)]
    pub use_mask: bool,
    #[serde(default = "one")]
    pub loss_weight: f32,
}

/// `loss_bbox` (`SmoothL1Loss`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmoothL1LossConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default = "one")]
    pub beta: f32,
    #[serde(default = "one")]
    pub loss_weight: f32,
}

fn one() -> f32 {
    1.0
}
fn feat() -> usize {
    256
}
fn minus_one() -> f32 {
    -1.0
}
fn thousand() -> usize {
    1000
}

/// The `rpn_head` config of mmdet (`type = "RPNHead"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RpnHeadConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub in_channels: usize,
    #[serde(default = "feat")]
    pub feat_channels: usize,
    pub anchor_generator: AnchorGeneratorConfig,
    #[serde(default)]
    pub bbox_coder: DeltaCoderConfig,
    pub loss_cls: CrossEntropyLossConfig,
    pub loss_bbox: SmoothL1LossConfig,
}

/// `train_cfg.rpn`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RpnTrainConfig {
    pub assigner: MaxIoUAssignerConfig,
    pub sampler: RandomSamplerConfig,
    /// `≥ 0`: anchors crossing the image border by more than this get no target.
    #[serde(default = "minus_one")]
    pub allowed_border: f32,
    #[serde(default = "minus_one")]
    pub pos_weight: f32,
    #[serde(default)]
    pub debug: bool,
}

/// `train_cfg.rpn_proposal` / `test_cfg.rpn`. `nms_post`, `max_num`, `nms_thr` and
/// `nms_across_levels` are mmdet 2.x's deprecated spellings: accepted, and `max_per_img` /
/// `nms.iou_threshold` win, as in mmdet 2.11 (which asserts they agree).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RpnProposalConfig {
    #[serde(default)]
    pub nms_across_levels: bool,
    #[serde(default = "thousand")]
    pub nms_pre: usize,
    #[serde(default)]
    pub nms_post: Option<usize>,
    #[serde(default)]
    pub max_num: Option<usize>,
    #[serde(default)]
    pub nms_thr: Option<f32>,
    #[serde(default = "thousand")]
    pub max_per_img: usize,
    pub nms: NmsConfig,
    #[serde(default)]
    pub min_bbox_size: f32,
}

/// Why the RPN cannot be built or used.
#[derive(Debug, thiserror::Error)]
pub enum RpnError {
    #[error("rpn_head.{0}")]
    Anchor(#[from] AnchorError),
    #[error("rpn_head.loss_cls: the RPN needs the sigmoid cross entropy (use_sigmoid = true)")]
    Softmax,
    #[error("rpn_head: {0} feature levels for {1} anchor strides")]
    Levels(usize, usize),
    #[error("rpn_head: {0} images of outputs for {1} image metas / ground truths")]
    Batch(usize, usize),
}

/// The head's parameters (`rpn_head.rpn_conv.*`, `rpn_head.rpn_cls.*`, `rpn_head.rpn_reg.*`).
#[derive(Module, Debug)]
pub struct RpnHead {
    pub rpn_conv: Conv2d,
    pub rpn_cls: Conv2d,
    pub rpn_reg: Conv2d,
    num_anchors: usize,
}

/// A conv with `normal_init(std=0.01)`, zero bias (mmdet 2.x's RPNHead init).
fn normal_conv(c_in: usize, c_out: usize, k: usize, device: &Device) -> Conv2d {
    let mut conv = Conv2d::torch_default(c_in, c_out, k, 1, k / 2, 1, true, device);
    conv.weight = init::normal([c_out, c_in, k, k], 0.01, device);
    conv.bias = Some(init::constant([c_out], 0.0, device));
    conv
}

impl RpnHead {
    pub fn new(cfg: &RpnHeadConfig, device: &Device) -> Result<Self, RpnError> {
        if !cfg.loss_cls.use_sigmoid {
            return Err(RpnError::Softmax);
        }
        let a = AnchorGenerator::new(&cfg.anchor_generator)?.num_base_anchors();
        Ok(Self {
            rpn_conv: normal_conv(cfg.in_channels, cfg.feat_channels, 3, device),
            rpn_cls: normal_conv(cfg.feat_channels, a, 1, device),
            rpn_reg: normal_conv(cfg.feat_channels, a * 4, 1, device),
            num_anchors: a,
        })
    }

    /// `(cls_scores, bbox_preds)` per level: `(B, A, H, W)` logits and `(B, 4A, H, W)` deltas
    /// (channel `a·4 + k`).
    pub fn forward(&self, feats: &[Tensor<4>]) -> (Vec<Tensor<4>>, Vec<Tensor<4>>) {
        feats
            .iter()
            .map(|x| {
                let x = relu(self.rpn_conv.forward(x.clone()));
                (self.rpn_cls.forward(x.clone()), self.rpn_reg.forward(x))
            })
            .unzip()
    }

    pub fn num_anchors(&self) -> usize {
        self.num_anchors
    }
}

/// Per-anchor targets of one image (levels concatenated, row order `(level, y, x, a)`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RpnTargets {
    /// 1 for a sampled positive (foreground), 0 otherwise.
    pub labels: Vec<f32>,
    /// 1 (or `pos_weight`) for sampled anchors, 0 for the rest.
    pub label_weights: Vec<f32>,
    pub bbox_targets: Vec<[f32; 4]>,
    /// 1 for sampled positives.
    pub bbox_weights: Vec<f32>,
    pub num_pos: usize,
    pub num_neg: usize,
}

/// Proposals of one image, by descending score.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Proposals {
    pub bboxes: Vec<Box4>,
    pub scores: Vec<f32>,
}

/// The non-learnt parts: anchors, coder, assigner, sampler, losses and proposal settings.
#[derive(Debug, Clone)]
pub struct RpnLogic {
    pub cfg: RpnHeadConfig,
    pub anchors: AnchorGenerator,
    pub coder: DeltaXYWHBBoxCoder,
}

/// `torch.finfo(torch.float32).eps`, added to the `avg_factor` as retina.rs does (later
/// mmdet; 2.11 divides by the bare count): the two differ by ~1e-9 relative for the RPN's
/// 256 samples per image, and the eps keeps an image without valid anchors at 0, not NaN.
const F32_EPS: f64 = 1.192_092_9e-7;

impl RpnLogic {
    pub fn new(cfg: &RpnHeadConfig) -> Result<Self, RpnError> {
        if !cfg.loss_cls.use_sigmoid {
            return Err(RpnError::Softmax);
        }
        Ok(Self {
            anchors: AnchorGenerator::new(&cfg.anchor_generator)?,
            coder: DeltaXYWHBBoxCoder::new(cfg.bbox_coder.clone()),
            cfg: cfg.clone(),
        })
    }

    /// `AnchorHead._get_targets_single` with sampling, for one image: valid anchors (inside
    /// the padded map and, with `allowed_border ≥ 0`, the image) are assigned, sampled, and
    /// the sampled positives get foreground labels and encoded deltas.
    pub fn targets(
        &self,
        train: &RpnTrainConfig,
        sizes: &[(usize, usize)],
        meta: &ImageMeta,
        gt: &GtInstances,
        rng: &mut SamplerRng,
    ) -> RpnTargets {
        let crate::anchor::AnchorsInside {
            anchors, inside, ..
        } = self.anchors.anchors_inside(
            sizes,
            meta.img_shape,
            meta.pad_shape,
            train.allowed_border,
        );
        let inside_anchors: Vec<Box4> = inside.iter().map(|&i| anchors[i]).collect();
        // the RPN assigns without labels (gt_labels = None)
        let assign = MaxIoUAssigner::new(train.assigner.clone()).assign(
            &inside_anchors,
            &gt.bboxes,
            &[],
            &[],
        );
        let sampling = RandomSampler::new(train.sampler.clone()).sample(
            &assign,
            &inside_anchors,
            &gt.bboxes,
            &[],
            rng,
        );
        let n = anchors.len();
        let mut t = RpnTargets {
            labels: vec![0.0; n],
            label_weights: vec![0.0; n],
            bbox_targets: vec![[0.0; 4]; n],
            bbox_weights: vec![0.0; n],
            num_pos: sampling.pos_inds.len(),
            num_neg: sampling.neg_inds.len(),
        };
        let pos_weight = if train.pos_weight <= 0.0 {
            1.0
        } else {
            train.pos_weight
        };
        // with add_gt_as_proposals the first `num_gts` candidates are GT boxes, which have no
        // anchor; the RPN config never adds them, but skip them rather than misindex
        let offset = if train.sampler.add_gt_as_proposals {
            sampling.num_gts
        } else {
            0
        };
        for (k, &p) in sampling.pos_inds.iter().enumerate() {
            let Some(c) = p.checked_sub(offset) else {
                continue;
            };
            let i = inside[c];
            t.labels[i] = 1.0;
            t.label_weights[i] = pos_weight;
            t.bbox_targets[i] = self
                .coder
                .encode(&sampling.pos_bboxes[k], &sampling.pos_gt_bboxes[k]);
            t.bbox_weights[i] = 1.0;
        }
        for &q in &sampling.neg_inds {
            if let Some(c) = q.checked_sub(offset) {
                t.label_weights[inside[c]] = 1.0;
            }
        }
        t
    }

    /// `RPNHead.loss`: per level `(loss_rpn_cls, loss_rpn_bbox)`, each a weighted sum over the
    /// level divided by the number of sampled anchors in the batch (`num_total_pos +
    /// num_total_neg`). `rngs` holds one sampler generator per image.
    pub fn loss(
        &self,
        train: &RpnTrainConfig,
        cls_scores: &[Tensor<4>],
        bbox_preds: &[Tensor<4>],
        metas: &[ImageMeta],
        gts: &[GtInstances],
        rngs: &mut [SamplerRng],
    ) -> Result<(Vec<Tensor<1>>, Vec<Tensor<1>>), RpnError> {
        let targets = self.batch_targets(train, cls_scores, metas, gts, rngs)?;
        Ok(self.loss_from_targets(cls_scores, bbox_preds, &targets))
    }

    /// The targets of every image of the batch (checks the level and batch counts).
    pub fn batch_targets(
        &self,
        train: &RpnTrainConfig,
        cls_scores: &[Tensor<4>],
        metas: &[ImageMeta],
        gts: &[GtInstances],
        rngs: &mut [SamplerRng],
    ) -> Result<Vec<RpnTargets>, RpnError> {
        if cls_scores.len() != self.anchors.num_levels() {
            return Err(RpnError::Levels(
                cls_scores.len(),
                self.anchors.num_levels(),
            ));
        }
        let b = cls_scores[0].dims()[0];
        if metas.len() != b || gts.len() != b || rngs.len() != b {
            return Err(RpnError::Batch(
                b,
                metas.len().min(gts.len()).min(rngs.len()),
            ));
        }
        let sizes = level_sizes(cls_scores);
        Ok(metas
            .iter()
            .zip(gts)
            .zip(rngs.iter_mut())
            .map(|((m, g), r)| self.targets(train, &sizes, m, g, r))
            .collect())
    }

    /// The loss for given targets (what [`Self::loss`] computes after sampling).
    pub fn loss_from_targets(
        &self,
        cls_scores: &[Tensor<4>],
        bbox_preds: &[Tensor<4>],
        targets: &[RpnTargets],
    ) -> (Vec<Tensor<1>>, Vec<Tensor<1>>) {
        let avg = targets.iter().map(|t| t.num_pos + t.num_neg).sum::<usize>() as f64 + F32_EPS;
        let a = self.anchors.num_base_anchors();
        let device = cls_scores[0].device();
        let beta = self.cfg.loss_bbox.beta;
        let (mut losses_cls, mut losses_bbox) = (Vec::new(), Vec::new());
        let mut offset = 0;
        for (cls, reg) in cls_scores.iter().zip(bbox_preds) {
            let [b, _, h, w] = cls.dims();
            let n = h * w * a;
            let (mut lab, mut lw) = (Vec::with_capacity(b * n), Vec::with_capacity(b * n));
            let (mut bt, mut bw) = (Vec::with_capacity(b * n * 4), Vec::with_capacity(b * n * 4));
            for t in targets {
                lab.extend_from_slice(&t.labels[offset..offset + n]);
                lw.extend_from_slice(&t.label_weights[offset..offset + n]);
                for k in offset..offset + n {
                    bt.extend_from_slice(&t.bbox_targets[k]);
                    bw.extend(std::iter::repeat_n(t.bbox_weights[k], 4));
                }
            }
            offset += n;
            let tensor = |v: Vec<f32>, shape: [usize; 2]| {
                Tensor::<2>::from_data(TensorData::new(v, shape), &device)
            };
            let logits = cls.clone().permute([0, 2, 3, 1]).reshape([b * n, 1]);
            let bce = bce_with_logits(logits, tensor(lab, [b * n, 1]));
            let loss_cls = (bce * tensor(lw, [b * n, 1]))
                .sum()
                .div_scalar(avg)
                .mul_scalar(self.cfg.loss_cls.loss_weight);
            let preds = reg.clone().permute([0, 2, 3, 1]).reshape([b * n, 4]);
            let l1 = smooth_l1(preds - tensor(bt, [b * n, 4]), beta);
            let loss_bbox = (l1 * tensor(bw, [b * n, 4]))
                .sum()
                .div_scalar(avg)
                .mul_scalar(self.cfg.loss_bbox.loss_weight);
            losses_cls.push(loss_cls);
            losses_bbox.push(loss_bbox);
        }
        (losses_cls, losses_bbox)
    }

    /// `RPNHead._get_bboxes` for image `img` of the batch (mmdet 2.11): per level the
    /// sigmoid scores of all anchors, sorted descending, first `nms_pre` kept; decode with
    /// the f32 anchors clipped to `img_shape`; drop boxes narrower or lower than
    /// `min_bbox_size` when it is `> 0`; `batched_nms` with the level as the label; first
    /// `max_per_img`. The proposals are host data: the RoI head never back-propagates into
    /// them.
    pub fn proposals(
        &self,
        cfg: &RpnProposalConfig,
        cls_scores: &[Tensor<4>],
        bbox_preds: &[Tensor<4>],
        img: usize,
        meta: &ImageMeta,
    ) -> Result<Proposals, RpnError> {
        if cls_scores.len() != self.anchors.num_levels() || bbox_preds.len() != cls_scores.len() {
            return Err(RpnError::Levels(
                cls_scores.len(),
                self.anchors.num_levels(),
            ));
        }
        let b = cls_scores[0].dims()[0];
        if img >= b {
            return Err(RpnError::Batch(b, img + 1));
        }
        let iou = cfg.nms_thr.unwrap_or(cfg.nms.iou_threshold);
        let (mut boxes, mut scores, mut levels) = (Vec::new(), Vec::new(), Vec::new());
        for (l, (cls, reg)) in cls_scores.iter().zip(bbox_preds).enumerate() {
            let [_, a, h, w] = cls.dims();
            let s = level_rows(sigmoid(cls.clone()), img, 1);
            let d = level_rows(reg.clone(), img, 4);
            debug_assert_eq!(s.len(), h * w * a);
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|&i, &j| s[j].total_cmp(&s[i]).then(i.cmp(&j)));
            if cfg.nms_pre > 0 {
                order.truncate(cfg.nms_pre);
            }
            let anchors = self.anchors.grid_anchors(l, (h, w));
            for i in order {
                let delta = [d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]];
                boxes.push(self.coder.decode(&anchors[i], &delta, Some(meta.img_shape)));
                scores.push(s[i]);
                levels.push(l);
            }
        }
        if cfg.min_bbox_size > 0.0 {
            let keep: Vec<usize> = (0..boxes.len())
                .filter(|&i| {
                    let bb = &boxes[i];
                    bb[2] - bb[0] >= cfg.min_bbox_size && bb[3] - bb[1] >= cfg.min_bbox_size
                })
                .collect();
            boxes = keep.iter().map(|&i| boxes[i]).collect();
            scores = keep.iter().map(|&i| scores[i]).collect();
            levels = keep.iter().map(|&i| levels[i]).collect();
        }
        let mut keep = batched_nms(&boxes, &scores, &levels, iou);
        keep.truncate(cfg.max_per_img);
        Ok(Proposals {
            bboxes: keep.iter().map(|&i| boxes[i]).collect(),
            scores: keep.iter().map(|&i| scores[i]).collect(),
        })
    }
}

/// `(h, w)` of every level.
fn level_sizes(maps: &[Tensor<4>]) -> Vec<(usize, usize)> {
    maps.iter()
        .map(|t| {
            let [_, _, h, w] = t.dims();
            (h, w)
        })
        .collect()
}

/// Image `img` of a `(B, A·k, H, W)` map as host rows `(y, x, a)` of `k` values.
fn level_rows(t: Tensor<4>, img: usize, k: usize) -> Vec<f32> {
    let [_, ch, h, w] = t.dims();
    t.narrow(0, img, 1)
        .reshape([ch, h * w])
        .transpose()
        .reshape([h * w * ch / k, k])
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// `F.binary_cross_entropy_with_logits(x, t, reduction='none')`, in the stable form
/// `max(x, 0) − x·t + log(1 + e^(−|x|))`.
pub fn bce_with_logits(x: Tensor<2>, t: Tensor<2>) -> Tensor<2> {
    x.clone().clamp_min(0.0) - x.clone() * t + x.abs().neg().exp().log1p()
}

/// mmdet's `smooth_l1_loss` of a difference: `0.5·d²/β` where `|d| < β`, else `|d| − β/2`.
pub fn smooth_l1(diff: Tensor<2>, beta: f32) -> Tensor<2> {
    let d = diff.abs();
    if beta <= 0.0 {
        return d;
    }
    let small = d.clone().lower_elem(beta);
    let quad = (d.clone() * d.clone()).mul_scalar(0.5 / beta);
    let lin = d.sub_scalar(0.5 * beta);
    lin.mask_where(small, quad)
}
