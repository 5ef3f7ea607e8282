//! mmdet 2.x's `CascadeRoIHead`: `num_stages` box heads (and mask heads), each trained on
//! proposals refined by the previous stage, with its own IoU thresholds and coder stds.
//!
//! **Training** (`forward_train`), stage `i` with loss weight `w_i`:
//! 1. per image, MaxIoU-assign the current proposals to the GT boxes and draw
//!    `sampler.num` RoIs (GT boxes added as proposals);
//! 2. RoIAlign the sampled RoIs (`bbox2roi` order: image, then positives before negatives),
//!    run the box head, and add `s{i}.loss_cls`, `s{i}.loss_bbox` (× `w_i`) and `s{i}.acc`;
//! 3. with a mask head, RoIAlign the positives only, 28×28 targets cropped from the GT masks,
//!    and `s{i}.loss_mask` (× `w_i`);
//! 4. before the next stage, regress every RoI with its target class (background RoIs take the
//!    argmax foreground class of the scores) and drop the GT boxes added as proposals.
//!
//! **Testing** (`simple_test`): the RPN proposals go through every stage, each stage
//! refining the RoIs with its argmax class; the class logits of the stages are averaged and
//! the last stage's regression gives the boxes (`get_bboxes`: softmax, decode, per-class NMS).
//! Masks: every stage's mask head runs on the final boxes, the sigmoid masks are averaged
//! (`merge_aug_masks`) and pasted into the original image (`get_seg_masks`).
//!
//! The sampler draws come from [`SamplerRng`]s seeded by `(batch seed, image, stage)`, so a
//! resumed run draws what an uninterrupted one would.

use crate::ops::boxes::Box4;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use image::GrayImage;
use mona_core::registry::find;

use super::config::{CascadeRoIHeadConfig, RcnnTrainConfig};
use crate::assigner::MaxIoUAssigner;
use crate::retina::{Detections, GtInstances, ImageMeta};
use crate::roi::bbox_logic::{argmax, host, multiclass_nms};
use crate::roi::mask_ops::{get_seg_masks, get_targets};
use crate::roi::{
    BBoxHead, BBoxHeadEntry, BBoxHeadError, BBoxHeadLogic, FcnMaskHeadConfig, MaskHead,
    MaskHeadEntry, MaskHeadError, MaskOpsError, RcnnTestConfig, Roi, RoiExtractorError,
    SingleRoIExtractor, bbox2roi,
};
use crate::sampler::{RandomSampler, SamplerRng, SamplingResult};
use crate::tta::ViewGeometry;

/// Why the RoI head cannot be built or run.
#[derive(Debug, thiserror::Error)]
pub enum CascadeError {
    #[error("roi_head.{key}: {message}")]
    Config { key: String, message: String },
    #[error("roi_head: {0}")]
    Extractor(#[from] RoiExtractorError),
    #[error("roi_head.bbox_head: {0}")]
    BBoxHead(#[from] BBoxHeadError),
    #[error("roi_head.mask_head: {0}")]
    MaskHead(#[from] MaskHeadError),
    #[error("roi_head.mask_head: {0}")]
    MaskOps(#[from] MaskOpsError),
    #[error("roi_head: {0}")]
    Head(String),
    #[error("train_cfg.rcnn is missing: the RoI head cannot be trained without its assigners")]
    NoTrainCfg,
    #[error("roi_head: {got} images of ground truth for a batch of {want}")]
    Batch { got: usize, want: usize },
}

fn config_err(key: &str, message: impl Into<String>) -> CascadeError {
    CascadeError::Config {
        key: key.to_string(),
        message: message.into(),
    }
}

/// The ground truth of a training batch, and the seed of its sampler draws.
#[derive(Debug, Clone, Copy)]
pub struct TrainImages<'a> {
    pub metas: &'a [ImageMeta],
    pub gts: &'a [GtInstances],
    /// Instance masks per image (empty lists without a mask head).
    pub gt_masks: &'a [Vec<GrayImage>],
    pub seed: u64,
}

/// One image of a test batch: its index in the batch and what mmdet's `img_metas` say about
/// it.
#[derive(Debug, Clone, Copy)]
pub struct TestImage {
    pub index: usize,
    pub meta: ImageMeta,
    pub scale_factor: [f32; 4],
    pub ori_shape: (usize, usize),
}

/// The non-learnt parts: extractors, stage weights and the per-stage configs.
#[derive(Debug, Clone)]
pub struct CascadeLogic {
    pub bbox_extractors: Vec<SingleRoIExtractor>,
    pub mask_extractors: Vec<SingleRoIExtractor>,
    pub bbox_logics: Vec<BBoxHeadLogic>,
    pub stage_loss_weights: Vec<f32>,
    pub num_classes: usize,
}

/// The head: `roi_head.bbox_head.{i}.*`, `roi_head.mask_head.{i}.*` as in mmdet.
#[derive(Module, Debug)]
pub struct CascadeRoIHead {
    pub bbox_head: Vec<BBoxHead>,
    pub mask_head: Vec<MaskHead>,
    #[module(skip)]
    logic: CascadeLogic,
}

impl CascadeRoIHead {
    pub fn new(cfg: &CascadeRoIHeadConfig, device: &Device) -> Result<Self, CascadeError> {
        let n = cfg.num_stages;
        if n == 0 {
            return Err(config_err("num_stages", "must be at least 1"));
        }
        if cfg.stage_loss_weights.len() != n {
            return Err(config_err(
                "stage_loss_weights",
                format!("{} weights for {n} stages", cfg.stage_loss_weights.len()),
            ));
        }
        let per_stage_err = |key: &str, len: Option<usize>| {
            config_err(
                key,
                format!("a list of {} for {n} stages", len.unwrap_or_default()),
            )
        };
        let bbox_cfgs = cfg
            .bbox_head
            .stages(n)
            .ok_or_else(|| per_stage_err("bbox_head", cfg.bbox_head.list_len()))?;
        let bbox_extractors = cfg
            .bbox_roi_extractor
            .stages(n)
            .ok_or_else(|| per_stage_err("bbox_roi_extractor", cfg.bbox_roi_extractor.list_len()))?
            .iter()
            .map(SingleRoIExtractor::new)
            .collect::<Result<Vec<_>, _>>()?;
        let num_classes = bbox_cfgs[0].num_classes;
        let mut bbox_head = Vec::with_capacity(n);
        let mut bbox_logics = Vec::with_capacity(n);
        for (i, c) in bbox_cfgs.iter().enumerate() {
            if c.num_classes != num_classes {
                return Err(config_err(
                    &format!("bbox_head[{i}].num_classes"),
                    format!("{} but stage 0 has {num_classes}", c.num_classes),
                ));
            }
            let err = |e: BBoxHeadError| config_err(&format!("bbox_head.{i}"), e.to_string());
            let kind = c.kind.as_deref().unwrap_or("ConvFCBBoxHead");
            let entry = find::<BBoxHeadEntry>(kind).ok_or_else(|| {
                config_err(
                    &format!("bbox_head.{i}.type"),
                    format!("unknown bbox head type \"{kind}\""),
                )
            })?;
            let (head, logic) = (entry.build)(c, device).map_err(err)?;
            bbox_head.push(head);
            bbox_logics.push(logic);
        }
        let (mut mask_head, mut mask_extractors) = (Vec::new(), Vec::new());
        if let Some(mh) = &cfg.mask_head {
            let mcfgs: Vec<FcnMaskHeadConfig> = mh
                .stages(n)
                .ok_or_else(|| per_stage_err("mask_head", mh.list_len()))?;
            mask_extractors = if cfg.share_roi_extractor {
                bbox_extractors.clone()
            } else {
                let me = cfg.mask_roi_extractor.as_ref().ok_or_else(|| {
                    config_err(
                        "mask_roi_extractor",
                        "missing (needed by mask_head unless share_roi_extractor)",
                    )
                })?;
                me.stages(n)
                    .ok_or_else(|| per_stage_err("mask_roi_extractor", me.list_len()))?
                    .iter()
                    .map(SingleRoIExtractor::new)
                    .collect::<Result<Vec<_>, _>>()?
            };
            for (i, c) in mcfgs.iter().enumerate() {
                if c.num_classes != num_classes {
                    return Err(config_err(
                        &format!("mask_head[{i}].num_classes"),
                        format!("{} but the box heads have {num_classes}", c.num_classes),
                    ));
                }
                let kind = c.kind.as_deref().unwrap_or("FCNMaskHead");
                let entry = find::<MaskHeadEntry>(kind).ok_or_else(|| {
                    config_err(
                        &format!("mask_head.{i}.type"),
                        format!("unknown mask head type \"{kind}\""),
                    )
                })?;
                mask_head.push(
                    (entry.build)(c, device)
                        .map_err(|e| config_err(&format!("mask_head[{i}]"), e.to_string()))?,
                );
            }
        }
        Ok(Self {
            bbox_head,
            mask_head,
            logic: CascadeLogic {
                bbox_extractors,
                mask_extractors,
                bbox_logics,
                stage_loss_weights: cfg.stage_loss_weights.clone(),
                num_classes,
            },
        })
    }

    pub fn num_stages(&self) -> usize {
        self.bbox_head.len()
    }

    pub fn with_mask(&self) -> bool {
        !self.mask_head.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.logic.num_classes
    }

    /// The RoI features of stage `stage` for `rois` (feature levels beyond the extractor's
    /// strides are ignored, as mmdet slices `x[:num_inputs]`).
    fn bbox_forward(
        &self,
        stage: usize,
        feats: &[Tensor<4>],
        rois: &[Roi],
        training: bool,
    ) -> Result<(Tensor<2>, Tensor<2>), CascadeError> {
        let x = self.logic.bbox_extractors[stage].forward(feats, rois)?;
        Ok(self.bbox_head[stage].forward(x, training))
    }

    fn mask_forward(
        &self,
        stage: usize,
        feats: &[Tensor<4>],
        rois: &[Roi],
    ) -> Result<Tensor<4>, CascadeError> {
        let x = self.logic.mask_extractors[stage].forward(feats, rois)?;
        Ok(self.mask_head[stage].forward(x))
    }

    /// `forward_train`: the named, stage-weighted losses (see the module doc).
    pub fn losses(
        &self,
        feats: &[Tensor<4>],
        mut proposals: Vec<Vec<Box4>>,
        batch: &TrainImages,
        train: &[RcnnTrainConfig],
        training: bool,
    ) -> Result<Vec<(String, Tensor<1>)>, CascadeError> {
        let TrainImages {
            metas,
            gts,
            gt_masks,
            seed,
        } = *batch;
        let b = metas.len();
        if gts.len() != b || proposals.len() != b {
            return Err(CascadeError::Batch {
                got: gts.len().min(proposals.len()),
                want: b,
            });
        }
        if train.len() != self.num_stages() {
            return Err(config_err(
                "train_cfg.rcnn",
                format!("{} stages for {} box heads", train.len(), self.num_stages()),
            ));
        }
        let device = feats[0].device();
        let mut parts = Vec::new();
        for (stage, cfg) in train.iter().enumerate() {
            let w = self.logic.stage_loss_weights[stage];
            let assigner = MaxIoUAssigner::new(cfg.assigner.clone());
            let sampler = RandomSampler::new(cfg.sampler.clone());
            let samplings: Vec<SamplingResult> = (0..b)
                .map(|j| {
                    let gt = &gts[j];
                    let assign = assigner.assign(&proposals[j], &gt.bboxes, &gt.labels, &[]);
                    let mut rng = SamplerRng::from_parts(&[seed, j as u64, stage as u64]);
                    sampler.sample(&assign, &proposals[j], &gt.bboxes, &gt.labels, &mut rng)
                })
                .collect();
            let rois = bbox2roi(
                &samplings
                    .iter()
                    .map(SamplingResult::bboxes)
                    .collect::<Vec<_>>(),
            );
            let (cls, reg) = self.bbox_forward(stage, feats, &rois, training)?;
            let logic = &self.logic.bbox_logics[stage];
            let targets = logic.targets(&samplings, cfg.pos_weight)?;
            let l = logic.loss(cls.clone(), reg.clone(), &rois, &targets)?;
            parts.push((format!("s{stage}.loss_cls"), l.loss_cls.mul_scalar(w)));
            parts.push((
                format!("s{stage}.acc"),
                Tensor::<1>::from_data(TensorData::new(vec![l.acc], [1]), &device),
            ));
            parts.push((format!("s{stage}.loss_bbox"), l.loss_bbox.mul_scalar(w)));
            if self.with_mask() {
                let loss = self.mask_loss(stage, feats, &samplings, gt_masks, cfg.mask_size)?;
                parts.push((format!("s{stage}.loss_mask"), loss.mul_scalar(w)));
            }
            if stage + 1 < self.num_stages() {
                let pos_is_gt: Vec<Vec<bool>> =
                    samplings.iter().map(|s| s.pos_is_gt.clone()).collect();
                let img_shapes: Vec<(usize, usize)> = metas.iter().map(|m| m.img_shape).collect();
                proposals = logic.refine_bboxes(
                    &rois,
                    &targets.labels,
                    cls.detach(),
                    reg.detach(),
                    &pos_is_gt,
                    &img_shapes,
                )?;
            }
        }
        Ok(parts)
    }

    /// `_mask_forward_train`: BCE of the positives' gt-class masks against 28×28 targets.
    fn mask_loss(
        &self,
        stage: usize,
        feats: &[Tensor<4>],
        samplings: &[SamplingResult],
        gt_masks: &[Vec<GrayImage>],
        mask_size: usize,
    ) -> Result<Tensor<1>, CascadeError> {
        let pos: Vec<Vec<Box4>> = samplings.iter().map(|s| s.pos_bboxes.clone()).collect();
        let rois = bbox2roi(&pos);
        let device = feats[0].device();
        if rois.is_empty() {
            // no positive in the whole batch: mmdet 2.x skips the mask loss
            return Ok(Tensor::<1>::zeros([1], &device));
        }
        if gt_masks.len() != samplings.len()
            || samplings
                .iter()
                .zip(gt_masks)
                .any(|(s, m)| m.len() != s.num_gts)
        {
            return Err(CascadeError::Head(
                "the batch has no instance masks for its boxes; add LoadAnnotations(with_mask = \
                 true) to the training pipeline"
                    .into(),
            ));
        }
        let targets = get_targets(samplings, gt_masks, mask_size)?;
        let labels: Vec<i64> = samplings
            .iter()
            .flat_map(|s| s.pos_gt_labels.iter().copied())
            .collect();
        let pred = self.mask_forward(stage, feats, &rois)?;
        Ok(self.mask_head[stage].loss(pred, &targets, &labels)?)
    }

    /// `simple_test` for one image: detections in the network input's coordinates, with
    /// masks pasted at `ori_shape` when the head has mask branches.
    pub fn predict(
        &self,
        feats: &[Tensor<4>],
        image: &TestImage,
        proposals: &[Box4],
        test: &RcnnTestConfig,
    ) -> Result<Detections, CascadeError> {
        let TestImage {
            index: img,
            meta,
            scale_factor,
            ori_shape,
        } = *image;
        let Some(stages) = self.run_stages(feats, img, proposals, meta.img_shape)? else {
            return Ok(Detections::default());
        };
        let last = self.num_stages() - 1;
        let mut dets = self.logic.bbox_logics[last].predict(
            &stages.boxes,
            stages.mean_cls,
            stages.last_reg,
            meta.img_shape,
            None,
            test,
        )?;
        if self.with_mask() && !dets.bboxes.is_empty() {
            dets.masks = self.predict_masks(feats, img, &dets, scale_factor, ori_shape, test)?;
        }
        Ok(dets)
    }

    /// The box stages of one image: every stage scores the current boxes and all but the
    /// last refine them with their argmax foreground class (mmdet 2.x); `None` without
    /// proposals.
    fn run_stages(
        &self,
        feats: &[Tensor<4>],
        img: usize,
        proposals: &[Box4],
        img_shape: (usize, usize),
    ) -> Result<Option<StageOutputs>, CascadeError> {
        let k = self.num_classes();
        if proposals.is_empty() {
            return Ok(None);
        }
        let mut boxes = proposals.to_vec();
        let mut score_sum: Option<Tensor<2>> = None;
        let mut last_reg = None;
        for stage in 0..self.num_stages() {
            let rois = to_rois(img, &boxes);
            let (cls, reg) = self.bbox_forward(stage, feats, &rois, false)?;
            score_sum = Some(match score_sum {
                Some(s) => s + cls.clone(),
                None => cls.clone(),
            });
            if stage + 1 < self.num_stages() {
                // mmdet 2.x `simple_test`: refine with the argmax foreground class
                let cls = host(cls);
                let labels: Vec<usize> = (0..boxes.len())
                    .map(|r| argmax(&cls[r * (k + 1)..r * (k + 1) + k]))
                    .collect();
                let reg = host(reg);
                boxes = self.logic.bbox_logics[stage]
                    .regress_by_class(&boxes, &labels, &reg, img_shape);
            } else {
                last_reg = Some(reg);
            }
        }
        let (Some(sum), Some(last_reg)) = (score_sum, last_reg) else {
            return Ok(None);
        };
        Ok(Some(StageOutputs {
            boxes,
            mean_cls: sum.div_scalar(self.num_stages() as f32),
            last_reg,
        }))
    }

    /// mmdet 2.11 `CascadeRoIHead.aug_test` for one image seen through `views` (each view's
    /// features and geometry): the merged `proposals` (original image coordinates) mapped
    /// into each view run through the stages; each view's boxes (before NMS) mapped back; the
    /// views' boxes and softmax scores averaged (`merge_aug_bboxes`), then
    /// [`multiclass_nms`](crate::roi::bbox_logic::multiclass_nms). Masks: every stage's head
    /// in every view on the final boxes, sigmoid, flipped back, averaged (`merge_aug_masks`),
    /// pasted at `ori_shape`. Detections are in the original image's coordinates.
    pub fn predict_aug(
        &self,
        views: &[(Vec<Tensor<4>>, ViewGeometry)],
        proposals: &[Box4],
        ori_shape: (usize, usize),
        test: &RcnnTestConfig,
    ) -> Result<Detections, CascadeError> {
        let last = self.num_stages() - 1;
        let (mut box_sum, mut score_sum): (Vec<f32>, Vec<f32>) = (Vec::new(), Vec::new());
        for (feats, geometry) in views {
            let rois: Vec<Box4> = proposals.iter().map(|&b| geometry.to_view(b)).collect();
            let Some(stages) = self.run_stages(feats, 0, &rois, geometry.img_shape)? else {
                return Ok(Detections::default());
            };
            let (mut boxes, scores) = self.logic.bbox_logics[last].decode(
                &stages.boxes,
                stages.mean_cls,
                stages.last_reg,
                geometry.img_shape,
            )?;
            for b in boxes.chunks_exact_mut(4) {
                let back = geometry.to_original([b[0], b[1], b[2], b[3]]);
                b.copy_from_slice(&back);
            }
            add_into(&mut box_sum, boxes);
            add_into(&mut score_sum, scores);
        }
        let n = views.len() as f32;
        box_sum.iter_mut().for_each(|v| *v /= n);
        score_sum.iter_mut().for_each(|v| *v /= n);
        let mut dets = multiclass_nms(
            &box_sum,
            &score_sum,
            self.num_classes(),
            test.score_thr,
            test.nms.iou_threshold,
            test.max_per_img,
        );
        if self.with_mask() && !dets.bboxes.is_empty() {
            dets.masks = self.predict_masks_aug(views, &dets, ori_shape, test)?;
        }
        Ok(dets)
    }

    /// The sigmoid masks of every stage's head on `boxes` of image `img`, `(n, c, s, s)`.
    fn stage_mask_probs(
        &self,
        feats: &[Tensor<4>],
        img: usize,
        boxes: &[Box4],
    ) -> Result<Vec<Tensor<4>>, CascadeError> {
        let rois = to_rois(img, boxes);
        (0..self.num_stages())
            .map(|stage| {
                Ok(burn::tensor::activation::sigmoid(
                    self.mask_forward(stage, feats, &rois)?,
                ))
            })
            .collect()
    }

    /// Masks of `dets` (network coordinates): every stage's head, sigmoid, averaged, the
    /// detection's class channel pasted into the original image.
    fn predict_masks(
        &self,
        feats: &[Tensor<4>],
        img: usize,
        dets: &Detections,
        scale_factor: [f32; 4],
        ori_shape: (usize, usize),
        test: &RcnnTestConfig,
    ) -> Result<Vec<GrayImage>, CascadeError> {
        let Some(sum) = self
            .stage_mask_probs(feats, img, &dets.bboxes)?
            .into_iter()
            .reduce(|s, p| s + p)
        else {
            return Ok(Vec::new());
        };
        let dims = sum.dims();
        let probs = host(sum.div_scalar(self.num_stages() as f32));
        let chosen = class_channels(&probs, dims, &dets.labels);
        // mmdet 2.x `get_seg_masks(..., rescale=True)`: boxes back to the original image
        Ok(get_seg_masks(
            &chosen,
            dims[2],
            &dets.bboxes,
            ori_shape,
            scale_factor,
            true,
            test.mask_thr_binary.unwrap_or(0.5),
        )?)
    }

    /// `merge_aug_masks` of `dets` (original image coordinates): in each view, the boxes
    /// mapped into it and every stage's sigmoid masks, flipped back when the view flipped;
    /// the mean of all, the class channel pasted at `ori_shape` (`get_seg_masks` with scale
    /// factor 1).
    fn predict_masks_aug(
        &self,
        views: &[(Vec<Tensor<4>>, ViewGeometry)],
        dets: &Detections,
        ori_shape: (usize, usize),
        test: &RcnnTestConfig,
    ) -> Result<Vec<GrayImage>, CascadeError> {
        let (mut sum, mut count, mut dims) = (Vec::new(), 0usize, [0usize; 4]);
        for (feats, geometry) in views {
            let boxes: Vec<Box4> = dets.bboxes.iter().map(|&b| geometry.to_view(b)).collect();
            for p in self.stage_mask_probs(feats, 0, &boxes)? {
                dims = p.dims();
                let mut p = host(p);
                if geometry.flip {
                    p.chunks_exact_mut(dims[3]).for_each(|row| row.reverse());
                }
                add_into(&mut sum, p);
                count += 1;
            }
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        sum.iter_mut().for_each(|v| *v /= count as f32);
        let chosen = class_channels(&sum, dims, &dets.labels);
        Ok(get_seg_masks(
            &chosen,
            dims[2],
            &dets.bboxes,
            ori_shape,
            [1.0; 4],
            true,
            test.mask_thr_binary.unwrap_or(0.5),
        )?)
    }
}

/// What the box stages leave for `get_bboxes`: the boxes the last stage scored, the
/// stage-averaged class logits and the last stage's regression.
struct StageOutputs {
    boxes: Vec<Box4>,
    mean_cls: Tensor<2>,
    last_reg: Tensor<2>,
}

/// Adds `v` into the running sum `sum` (which starts empty).
fn add_into(sum: &mut Vec<f32>, v: Vec<f32>) {
    if sum.is_empty() {
        *sum = v;
    } else {
        sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
    }
}

/// Each detection's mask of its class from `probs (n, c, s, s)` (the one channel of a
/// class-agnostic head), concatenated.
fn class_channels(probs: &[f32], dims: [usize; 4], labels: &[usize]) -> Vec<f32> {
    let [n, c, h, w] = dims;
    debug_assert_eq!(h, w, "FCNMaskHead masks are square");
    let mut chosen = Vec::with_capacity(n * h * w);
    for (r, &label) in labels.iter().enumerate() {
        let ch = if c == 1 { 0 } else { label.min(c - 1) };
        let start = (r * c + ch) * h * w;
        chosen.extend_from_slice(&probs[start..start + h * w]);
    }
    chosen
}

/// `bbox2roi` of one image's boxes.
fn to_rois(img: usize, boxes: &[Box4]) -> Vec<Roi> {
    boxes
        .iter()
        .map(|b| [img as f32, b[0], b[1], b[2], b[3]])
        .collect()
}
