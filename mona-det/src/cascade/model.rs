//! `CascadeRCNN` (mmdet 2.x `TwoStageDetector`): backbone → FPN → RPN proposals →
//! [`CascadeRoIHead`]. Parameter keys are mmdet's: `backbone.*`, `neck.*`,
//! `rpn_head.rpn_conv.weight`, `roi_head.bbox_head.0.shared_convs.0.conv.weight`,
//! `roi_head.mask_head.2.conv_logits.weight`, ...

use crate::ops::boxes::Box4;
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use image::GrayImage;
use mona_core::backbone::Backbone;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use mona_core::runner::Losses;

use super::config::{RcnnTrainConfig, TwoStageTestConfig, TwoStageTrainConfig};
use super::registry::build_roi_head;
use super::roi_head::{CascadeError, CascadeRoIHead, TestImage, TrainImages};
use crate::component_types;
use crate::heads::{DenseHead, DenseHeadArgs, DenseRole, ProposalHead, build_dense_head};
use crate::model::backbone_and_neck;
use crate::neck::Neck;
use crate::retina::{Detections, GtInstances, ImageMeta};
use crate::rpn::{RpnError, RpnLogic};
use crate::sampler::SamplerRng;
use crate::tta::{AugView, merge_proposals};

/// Why a forward pass failed.
#[derive(Debug, thiserror::Error)]
pub enum TwoStageError {
    #[error(transparent)]
    Rpn(#[from] RpnError),
    #[error(transparent)]
    RoiHead(#[from] CascadeError),
    #[error("model.train_cfg is missing (the RPN and RoI heads need their assigners)")]
    NoTrainCfg,
}

/// The non-learnt settings.
#[derive(Debug, Clone)]
pub struct CascadeRcnnLogic {
    pub rpn: RpnLogic,
    pub train_cfg: Option<TwoStageTrainConfig>,
    /// `train_cfg.rcnn` resolved to one config per stage.
    pub rcnn_train: Vec<RcnnTrainConfig>,
    pub test_cfg: Option<TwoStageTestConfig>,
}

/// The detector.
#[derive(Module, Debug)]
pub struct CascadeRcnn {
    pub backbone: Backbone,
    pub neck: Neck,
    pub rpn_head: ProposalHead,
    pub roi_head: CascadeRoIHead,
    #[module(skip)]
    logic: CascadeRcnnLogic,
}

impl CascadeRcnn {
    /// Builds the model of a `model` config node (`train_cfg` / `test_cfg` at model level,
    /// as in mmdet 2.x configs).
    pub fn from_config(node: &ConfigNode<'_>, device: &Device) -> Result<Self, BuildError> {
        component_types::check(node, component_types::Detector::TwoStage)?;
        let (backbone, neck, neck_out) = backbone_and_neck(node, device)?;
        let rpn_node = node.child("rpn_head")?;
        let args = DenseHeadArgs {
            node: &rpn_node,
            model: node,
            neck: neck_out,
            device,
        };
        let (rpn_head, rpn) = match build_dense_head(&args, DenseRole::Proposal)? {
            DenseHead::Proposal(head, logic) => (*head, *logic),
            // A plugin whose builder returns a head of another role than it registered.
            DenseHead::SingleStage(..) => {
                return Err(BuildError::invalid(
                    &rpn_node,
                    Some("type"),
                    "registered as a region proposal head, but built a single-stage head",
                ));
            }
        };
        let roi_head = build_roi_head(&node.child("roi_head")?, device)?;
        let train_cfg: Option<TwoStageTrainConfig> = match node.get("train_cfg") {
            Some(t) => Some(t.extract()?),
            None => None,
        };
        let rcnn_train = match &train_cfg {
            Some(t) => t.rcnn.stages(roi_head.num_stages()).ok_or_else(|| {
                BuildError::invalid(
                    &node.child("train_cfg").expect("present"),
                    Some("rcnn"),
                    format!(
                        "{} stage configs for {} stages",
                        t.rcnn.list_len().unwrap_or(1),
                        roi_head.num_stages()
                    ),
                )
            })?,
            None => Vec::new(),
        };
        let test_cfg: Option<TwoStageTestConfig> = match node.get("test_cfg") {
            Some(t) => Some(t.extract()?),
            None => None,
        };
        Ok(Self {
            backbone,
            neck,
            rpn_head,
            roi_head,
            logic: CascadeRcnnLogic {
                rpn,
                train_cfg,
                rcnn_train,
                test_cfg,
            },
        })
    }

    /// The FPN levels of images `(B, 3, H, W)`.
    pub fn features(&self, images: Tensor<4>, training: bool) -> Vec<Tensor<4>> {
        let feats = self.backbone.forward(images, training);
        self.neck.forward(&feats)
    }

    /// `forward_train`: `loss_rpn_cls`, `loss_rpn_bbox` (summed over levels) and the RoI
    /// head's `s{i}.*` losses. `seed` drives every sampler draw of the batch.
    pub fn losses(
        &self,
        images: Tensor<4>,
        metas: &[ImageMeta],
        gts: &[GtInstances],
        gt_masks: &[Vec<GrayImage>],
        seed: u64,
        training: bool,
    ) -> Result<Losses, TwoStageError> {
        let train = self
            .logic
            .train_cfg
            .as_ref()
            .ok_or(TwoStageError::NoTrainCfg)?;
        let feats = self.features(images, training);
        let (rpn_cls, rpn_reg) = self.rpn_head.forward(&feats);
        let mut rngs: Vec<SamplerRng> = (0..metas.len())
            .map(|j| SamplerRng::from_parts(&[seed, j as u64, u64::MAX]))
            .collect();
        let (lc, lb) = self
            .logic
            .rpn
            .loss(&train.rpn, &rpn_cls, &rpn_reg, metas, gts, &mut rngs)?;
        let proposals = (0..metas.len())
            .map(|j| {
                self.logic
                    .rpn
                    .proposals(&train.rpn_proposal, &rpn_cls, &rpn_reg, j, &metas[j])
                    .map(|p| p.bboxes)
            })
            .collect::<Result<Vec<Vec<Box4>>, _>>()?;
        let sum = |v: Vec<Tensor<1>>| v.into_iter().reduce(|a, b| a + b);
        let mut parts = Vec::new();
        if let (Some(c), Some(b)) = (sum(lc), sum(lb)) {
            parts.push(("loss_rpn_cls".to_string(), c));
            parts.push(("loss_rpn_bbox".to_string(), b));
        }
        let images = TrainImages {
            metas,
            gts,
            gt_masks,
            seed,
        };
        parts.extend(self.roi_head.losses(
            &feats,
            proposals,
            &images,
            &self.logic.rcnn_train,
            training,
        )?);
        // mmdet `_parse_losses`: the total sums every entry whose name contains "loss".
        let total = parts
            .iter()
            .filter(|(k, _)| k.contains("loss"))
            .map(|(_, v)| v.clone())
            .reduce(|a, b| a + b)
            .ok_or(TwoStageError::NoTrainCfg)?;
        Ok(Losses { total, parts })
    }

    /// `simple_test`: detections per image in the network input's coordinates (masks at
    /// the original image size).
    pub fn predict(
        &self,
        images: Tensor<4>,
        metas: &[ImageMeta],
        scale_factors: &[[f32; 4]],
        ori_shapes: &[(usize, usize)],
    ) -> Result<Vec<Detections>, TwoStageError> {
        let test = self
            .logic
            .test_cfg
            .as_ref()
            .ok_or(CascadeError::Head("model.test_cfg is missing".into()))?;
        let feats = self.features(images, false);
        let (rpn_cls, rpn_reg) = self.rpn_head.forward(&feats);
        (0..metas.len())
            .map(|j| {
                let p = self
                    .logic
                    .rpn
                    .proposals(&test.rpn, &rpn_cls, &rpn_reg, j, &metas[j])?;
                let image = TestImage {
                    index: j,
                    meta: metas[j],
                    scale_factor: scale_factors[j],
                    ori_shape: ori_shapes[j],
                };
                Ok(self
                    .roi_head
                    .predict(&feats, &image, &p.bboxes, &test.rcnn)?)
            })
            .collect()
    }

    /// mmdet 2.11 `TwoStageDetector.aug_test` for one image seen through `views`: each
    /// view's RPN proposals, merged in the original image (`merge_aug_proposals`: NMS at the
    /// RPN's IoU threshold, the best `max_per_img`), then the RoI head's
    /// [`CascadeRoIHead::predict_aug`]. Detections are in the original image's coordinates.
    pub fn predict_aug(&self, views: &[AugView]) -> Result<Detections, TwoStageError> {
        let test = self
            .logic
            .test_cfg
            .as_ref()
            .ok_or(CascadeError::Head("model.test_cfg is missing".into()))?;
        let Some(first) = views.first() else {
            return Ok(Detections::default());
        };
        let mut features = Vec::with_capacity(views.len());
        let mut proposals = Vec::with_capacity(views.len());
        for view in views {
            let feats = self.features(view.batch.images.clone(), false);
            let (rpn_cls, rpn_reg) = self.rpn_head.forward(&feats);
            let p =
                self.logic
                    .rpn
                    .proposals(&test.rpn, &rpn_cls, &rpn_reg, 0, &view.batch.metas[0])?;
            proposals.push((p.bboxes, p.scores, view.geometry()));
            features.push((feats, view.geometry()));
        }
        let iou = test.rpn.nms_thr.unwrap_or(test.rpn.nms.iou_threshold);
        let max_num = test.rpn.max_num.unwrap_or(test.rpn.max_per_img);
        let proposals = merge_proposals(proposals, iou, max_num);
        let ori_shape = first.batch.ori_shapes[0];
        Ok(self
            .roi_head
            .predict_aug(&features, &proposals, ori_shape, &test.rcnn)?)
    }

    /// The official rule: backbone keys by the method (plus `frozen_stages`); neck and heads
    /// train.
    pub fn trainable(&self, key: &str) -> bool {
        match key.strip_prefix("backbone.") {
            Some(k) => self.backbone.trainable_in_training(k),
            None => true,
        }
    }

    pub fn logic(&self) -> &CascadeRcnnLogic {
        &self.logic
    }
}
