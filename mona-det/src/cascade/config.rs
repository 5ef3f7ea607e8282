//! The configs of mmdet 2.x's `CascadeRoIHead` and of the `train_cfg` / `test_cfg` of a
//! two-stage detector (`rpn`, `rpn_proposal`, `rcnn`).

use serde::Deserialize;

use crate::assigner::MaxIoUAssignerConfig;
use crate::roi::SingleRoIExtractorConfig;
use crate::roi::{BBoxHeadConfig, FcnMaskHeadConfig, RcnnTestConfig};
use crate::rpn::{RpnProposalConfig, RpnTrainConfig};
use crate::sampler::RandomSamplerConfig;

/// One dict, or one per stage: mmdet's `CascadeRoIHead.init_bbox_head` replicates a single
/// dict `num_stages` times.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum PerStage<T> {
    Many(Vec<T>),
    One(T),
}

impl<T: Clone> PerStage<T> {
    /// The per-stage list; `None` when a list has the wrong length.
    pub fn stages(&self, n: usize) -> Option<Vec<T>> {
        match self {
            PerStage::One(t) => Some(vec![t.clone(); n]),
            PerStage::Many(v) if v.len() == n => Some(v.clone()),
            PerStage::Many(_) => None,
        }
    }

    /// The length of a per-stage list (`None` for one shared dict), for error messages.
    pub fn list_len(&self) -> Option<usize> {
        match self {
            PerStage::One(_) => None,
            PerStage::Many(v) => Some(v.len()),
        }
    }
}

/// `model.roi_head` (`type = "CascadeRoIHead"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeRoIHeadConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub num_stages: usize,
    pub stage_loss_weights: Vec<f32>,
    pub bbox_roi_extractor: PerStage<SingleRoIExtractorConfig>,
    pub bbox_head: PerStage<BBoxHeadConfig>,
    #[serde(default)]
    pub mask_roi_extractor: Option<PerStage<SingleRoIExtractorConfig>>,
    #[serde(default)]
    pub mask_head: Option<PerStage<FcnMaskHeadConfig>>,
    /// mmdet 2.x shares the bbox extractor with the mask head when true.
    #[serde(default)]
    pub share_roi_extractor: bool,
    #[serde(default)]
    pub train_cfg: Option<serde_json::Value>,
    #[serde(default)]
    pub test_cfg: Option<serde_json::Value>,
}

fn minus_one() -> f32 {
    -1.0
}
fn twenty_eight() -> usize {
    28
}

/// One stage of `train_cfg.rcnn`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RcnnTrainConfig {
    pub assigner: MaxIoUAssignerConfig,
    pub sampler: RandomSamplerConfig,
    #[serde(default = "twenty_eight")]
    pub mask_size: usize,
    #[serde(default = "minus_one")]
    pub pos_weight: f32,
    #[serde(default)]
    pub debug: bool,
}

/// `train_cfg` of a two-stage detector.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwoStageTrainConfig {
    pub rpn: RpnTrainConfig,
    pub rpn_proposal: RpnProposalConfig,
    pub rcnn: PerStage<RcnnTrainConfig>,
}

/// `test_cfg` of a two-stage detector.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TwoStageTestConfig {
    pub rpn: RpnProposalConfig,
    pub rcnn: RcnnTestConfig,
}
