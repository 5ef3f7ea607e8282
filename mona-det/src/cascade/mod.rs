//! Cascade (Mask) R-CNN: the two-stage detector of the paper's COCO results.

pub mod config;
pub mod model;
pub mod registry;
pub mod roi_head;

pub use config::{CascadeRoIHeadConfig, RcnnTrainConfig, TwoStageTestConfig, TwoStageTrainConfig};
pub use model::{CascadeRcnn, TwoStageError};
pub use roi_head::{CascadeError, CascadeRoIHead};

use burn::tensor::Device;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use mona_core::runner::{BoxError, LossError, Losses, TrainModel};

use crate::batch::DetBatch;
use crate::detector::Detector;
use crate::retina::Detections;

impl TrainModel for CascadeRcnn {
    type Batch = DetBatch;

    fn losses(&self, batch: &DetBatch, training: bool) -> Result<Losses, LossError> {
        CascadeRcnn::losses(
            self,
            batch.images.clone(),
            &batch.metas,
            &batch.gts,
            &batch.gt_masks,
            batch.seed,
            training,
        )
        .map_err(|e| LossError::of_images(&batch.paths, e.to_string()))
    }

    fn trainable(&self, key: &str) -> bool {
        CascadeRcnn::trainable(self, key)
    }

    fn batch_to_device(batch: &DetBatch, device: &Device) -> Option<DetBatch> {
        Some(batch.to_device(device))
    }
}

impl Detector for CascadeRcnn {
    const TYPE: &'static str = "CascadeRCNN";

    fn from_config(node: &ConfigNode<'_>, device: &Device) -> Result<Self, BuildError> {
        CascadeRcnn::from_config(node, device)
    }

    fn method_name(&self) -> String {
        self.backbone.method().name().to_string()
    }

    fn parts(&self) -> Vec<mona_core::task::ModelPart> {
        use mona_core::task::ModelPart;
        vec![
            ModelPart::of("neck", &self.neck),
            ModelPart::of("rpn_head", &self.rpn_head),
            ModelPart::of("roi_head", &self.roi_head),
        ]
    }

    fn num_classes(&self) -> (usize, &'static str) {
        (
            self.roi_head.num_classes(),
            "model.roi_head.bbox_head.num_classes",
        )
    }

    fn check_train_cfg(&self) -> Result<(), BoxError> {
        match self.logic().train_cfg {
            Some(_) => Ok(()),
            None => Err(TwoStageError::NoTrainCfg.into()),
        }
    }

    fn predict(&self, batch: &DetBatch) -> Result<Vec<Detections>, BoxError> {
        Ok(CascadeRcnn::predict(
            self,
            batch.images.clone(),
            &batch.metas,
            &batch.scale_factors,
            &batch.ori_shapes,
        )?)
    }

    fn predict_aug(&self, views: &[crate::tta::AugView]) -> Result<Detections, BoxError> {
        Ok(CascadeRcnn::predict_aug(self, views)?)
    }
}
