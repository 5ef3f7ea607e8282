//! `RetinaNet` (mmdet 2.x `SingleStageDetector`): backbone → FPN neck → RetinaHead.
//! Parameter keys are mmdet's: `backbone.*`, `neck.lateral_convs.0.conv.weight`,
//! `bbox_head.cls_convs.0.conv.weight`, `bbox_head.retina_cls.weight`, ...

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use mona_core::backbone::{Backbone, build_backbone};
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use mona_core::runner::{BoxError, LossError, Losses, TrainModel};

use crate::batch::DetBatch;
use crate::component_types;
use crate::detector::Detector;
use crate::heads::{DenseHead, DenseHeadArgs, DenseRole, SingleStageHead, build_dense_head};
use crate::neck::{Neck, NeckOutputs, build_neck};
use crate::retina::{Detections, GtInstances, ImageMeta, RetinaError, RetinaLogic};
use crate::tta::{AugView, merge_dense_candidates};

/// RetinaNet trains only with a `train_cfg`: the head's loss assigns anchors with it.
#[derive(Debug, thiserror::Error)]
#[error("model.train_cfg is missing (the RetinaHead loss needs its assigner)")]
pub struct NoTrainCfg;

/// The `backbone` and the `neck` of a detector's `model` node, with what the neck outputs;
/// the neck must take the backbone's output channels.
pub fn backbone_and_neck(
    node: &ConfigNode<'_>,
    device: &Device,
) -> Result<(Backbone, Neck, NeckOutputs), BuildError> {
    let backbone = build_backbone(&node.child("backbone")?, device)?;
    let (neck, outputs) = build_neck(&node.child("neck")?, &backbone.out_channels(), device)?;
    Ok((backbone, neck, outputs))
}

/// The detector.
#[derive(Module, Debug)]
pub struct RetinaNet {
    pub backbone: Backbone,
    pub neck: Neck,
    pub bbox_head: SingleStageHead,
    #[module(skip)]
    logic: RetinaLogic,
}

impl RetinaNet {
    /// Builds the model of a `model` config node (`train_cfg` / `test_cfg` at model level, as
    /// in mmdet 2.x configs, or inside `bbox_head`).
    pub fn from_config(node: &ConfigNode<'_>, device: &Device) -> Result<Self, BuildError> {
        component_types::check(node, component_types::Detector::SingleStage)?;
        let (backbone, neck, neck_out) = backbone_and_neck(node, device)?;
        let head_node = node.child("bbox_head")?;
        let args = DenseHeadArgs {
            node: &head_node,
            model: node,
            neck: neck_out,
            device,
        };
        match build_dense_head(&args, DenseRole::SingleStage)? {
            DenseHead::SingleStage(bbox_head, logic) => Ok(Self {
                backbone,
                neck,
                bbox_head: *bbox_head,
                logic: *logic,
            }),
            // A plugin whose builder returns a head of another role than it registered.
            DenseHead::Proposal(..) => Err(BuildError::invalid(
                &head_node,
                Some("type"),
                "registered as a single-stage head, but built a region proposal head",
            )),
        }
    }

    /// `(cls_scores, bbox_preds)` per level of images `(B, 3, H, W)`.
    pub fn forward(&self, images: Tensor<4>, training: bool) -> (Vec<Tensor<4>>, Vec<Tensor<4>>) {
        let feats = self.backbone.forward(images, training);
        let feats = self.neck.forward(&feats);
        self.bbox_head.forward(&feats)
    }

    /// `loss_cls` and `loss_bbox` (each summed over levels, as mmdet's log shows them).
    pub fn losses(
        &self,
        images: Tensor<4>,
        metas: &[ImageMeta],
        gts: &[GtInstances],
        training: bool,
    ) -> Result<Losses, RetinaError> {
        let (cls, reg) = self.forward(images, training);
        let (lc, lb) = self.logic.loss(&cls, &reg, metas, gts)?;
        let sum = |v: Vec<Tensor<1>>| v.into_iter().reduce(|a, b| a + b);
        let (Some(loss_cls), Some(loss_bbox)) = (sum(lc), sum(lb)) else {
            return Err(RetinaError::Levels(0, self.logic.anchors.num_levels()));
        };
        Ok(Losses {
            total: loss_cls.clone() + loss_bbox.clone(),
            parts: vec![
                ("loss_cls".to_string(), loss_cls),
                ("loss_bbox".to_string(), loss_bbox),
            ],
        })
    }

    /// Detections per image (in the coordinates of the network input, `rescale=False`).
    pub fn predict(
        &self,
        images: Tensor<4>,
        metas: &[ImageMeta],
    ) -> Result<Vec<Detections>, RetinaError> {
        let (cls, reg) = self.forward(images, false);
        (0..metas.len())
            .map(|i| self.logic.predict(&cls, &reg, i, &metas[i], true))
            .collect()
    }

    /// mmdet 2.11 `aug_test` of a single-stage detector (`aug_test_bboxes`): each view's
    /// candidates before NMS, mapped back to the original image and merged by
    /// [`merge_dense_candidates`]; in the original image's coordinates.
    pub fn predict_aug(&self, views: &[AugView]) -> Result<Detections, RetinaError> {
        let test = self
            .logic
            .cfg
            .test_cfg
            .as_ref()
            .ok_or(RetinaError::NoTestCfg)?;
        let per_view = views
            .iter()
            .map(|v| {
                let (cls, reg) = self.forward(v.batch.images.clone(), false);
                let candidates = self
                    .logic
                    .predict(&cls, &reg, 0, &v.batch.metas[0], false)?;
                Ok((candidates, v.geometry()))
            })
            .collect::<Result<Vec<_>, RetinaError>>()?;
        Ok(merge_dense_candidates(
            per_view,
            test.nms.iou_threshold,
            test.max_per_img,
        ))
    }

    /// The official rule: backbone keys by the method (plus `frozen_stages`); neck and head
    /// train.
    pub fn trainable(&self, key: &str) -> bool {
        match key.strip_prefix("backbone.") {
            Some(k) => self.backbone.trainable_in_training(k),
            None => true,
        }
    }

    pub fn logic(&self) -> &RetinaLogic {
        &self.logic
    }
}

impl TrainModel for RetinaNet {
    type Batch = DetBatch;

    fn losses(&self, batch: &DetBatch, training: bool) -> Result<Losses, LossError> {
        RetinaNet::losses(
            self,
            batch.images.clone(),
            &batch.metas,
            &batch.gts,
            training,
        )
        .map_err(|e| LossError::of_images(&batch.paths, e.to_string()))
    }

    fn trainable(&self, key: &str) -> bool {
        RetinaNet::trainable(self, key)
    }

    fn batch_to_device(batch: &DetBatch, device: &Device) -> Option<DetBatch> {
        Some(batch.to_device(device))
    }
}

impl Detector for RetinaNet {
    const TYPE: &'static str = "RetinaNet";

    fn from_config(
        node: &mona_core::config::ConfigNode<'_>,
        device: &Device,
    ) -> Result<Self, mona_core::registry::BuildError> {
        RetinaNet::from_config(node, device)
    }

    fn method_name(&self) -> String {
        self.backbone.method().name().to_string()
    }

    fn num_classes(&self) -> (usize, &'static str) {
        (self.logic.cfg.num_classes, "model.bbox_head.num_classes")
    }

    fn parts(&self) -> Vec<mona_core::task::ModelPart> {
        use mona_core::task::ModelPart;
        vec![
            ModelPart::of("neck", &self.neck),
            ModelPart::of("bbox_head", &self.bbox_head),
        ]
    }

    fn check_train_cfg(&self) -> Result<(), BoxError> {
        match self.logic().cfg.train_cfg {
            Some(_) => Ok(()),
            None => Err(NoTrainCfg.into()),
        }
    }

    fn predict(&self, batch: &DetBatch) -> Result<Vec<Detections>, BoxError> {
        Ok(RetinaNet::predict(
            self,
            batch.images.clone(),
            &batch.metas,
        )?)
    }

    fn predict_aug(&self, views: &[AugView]) -> Result<Detections, BoxError> {
        Ok(RetinaNet::predict_aug(self, views)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mona_core::config::Config;
    use mona_core::params::param_infos;

    const CFG: &str = r#"
[model]
type = "RetinaNet"

[model.backbone]
type = "SwinTransformer"
embed_dim = 16
depths = [1, 1, 1, 1]
num_heads = [1, 1, 2, 2]
window_size = 2
out_indices = [0, 1, 2, 3]

[model.backbone.method]
type = "mona"

[model.neck]
type = "FPN"
in_channels = [16, 32, 64, 128]
out_channels = 8
start_level = 1
add_extra_convs = "on_input"
num_outs = 5

[model.bbox_head]
type = "RetinaHead"
num_classes = 3
in_channels = 8
stacked_convs = 2
feat_channels = 8
anchor_generator = { type = "AnchorGenerator", octave_base_scale = 4, scales_per_octave = 3, ratios = [0.5, 1.0, 2.0], strides = [8, 16, 32, 64, 128] }
bbox_coder = { type = "DeltaXYWHBBoxCoder", target_means = [0.0, 0.0, 0.0, 0.0], target_stds = [1.0, 1.0, 1.0, 1.0] }
loss_cls = { type = "FocalLoss", use_sigmoid = true, gamma = 2.0, alpha = 0.25, loss_weight = 1.0 }
loss_bbox = { type = "L1Loss", loss_weight = 1.0 }

[model.train_cfg]
assigner = { type = "MaxIoUAssigner", pos_iou_thr = 0.5, neg_iou_thr = 0.4, min_pos_iou = 0, ignore_iof_thr = -1 }
allowed_border = -1
pos_weight = -1
debug = false

[model.test_cfg]
nms_pre = 1000
min_bbox_size = 0
score_thr = 0.05
nms = { type = "nms", iou_threshold = 0.5 }
max_per_img = 100
"#;

    #[test]
    fn builds_with_mmdet_keys_trains_and_predicts() {
        let cfg = Config::from_str_at(CFG, "retina.toml").expect("config");
        let device = Device::flex().autodiff();
        let model = RetinaNet::from_config(&cfg.root().child("model").expect("model"), &device)
            .expect("build");
        let keys: Vec<String> = param_infos(&model).into_iter().map(|p| p.key).collect();
        for k in [
            "neck.lateral_convs.0.conv.weight",
            "neck.fpn_convs.3.conv.weight",
            "bbox_head.cls_convs.1.conv.bias",
            "bbox_head.reg_convs.0.conv.weight",
            "bbox_head.retina_cls.weight",
            "bbox_head.retina_reg.bias",
        ] {
            assert!(keys.iter().any(|x| x == k), "no {k}");
        }
        assert!(model.trainable("bbox_head.retina_cls.weight"));
        assert!(!model.trainable("backbone.patch_embed.projection.weight"));
        let images = Tensor::<4>::ones([1, 3, 64, 64], &device);
        let meta = ImageMeta {
            img_shape: (64, 64),
            pad_shape: (64, 64),
        };
        let gt = GtInstances {
            bboxes: vec![[8.0, 8.0, 40.0, 48.0]],
            labels: vec![1],
        };
        let losses = model
            .losses(images.clone(), &[meta], &[gt], true)
            .expect("losses");
        let value: f32 = losses.total.clone().into_scalar::<f32>();
        assert!(value.is_finite() && value > 0.0, "{value}");
        assert_eq!(losses.parts.len(), 2);
        let dets = model.predict(images, &[meta]).expect("predict");
        assert_eq!(dets.len(), 1);
        assert!(dets[0].bboxes.len() <= 100);
    }

    #[test]
    fn channel_mismatch_names_the_key() {
        let bad = CFG.replace(
            "in_channels = [16, 32, 64, 128]",
            "in_channels = [16, 32, 64, 99]",
        );
        let cfg = Config::from_str_at(&bad, "retina.toml").expect("config");
        let err =
            RetinaNet::from_config(&cfg.root().child("model").expect("model"), &Device::flex())
                .expect_err("mismatch");
        let msg = err.to_string();
        assert!(
            msg.contains("retina.toml") && msg.contains("model.neck.in_channels"),
            "{msg}"
        );
    }
}
