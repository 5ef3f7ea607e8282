//! The config of a Cascade R-CNN stage's box head (mmdet 2.x `ConvFCBBoxHead` and its
//! presets), its checks, and the layout of its shared layers.

use mona_core::nn::NormCfg;
use serde::Deserialize;

use super::roi_align::OutputSize;
use crate::coder::DeltaCoderConfig;
use crate::retina::NmsConfig;
use crate::rpn::CrossEntropyLossConfig;

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
pub(crate) struct Layout {
    pub convs: usize,
    pub fcs: usize,
}

impl BBoxHeadConfig {
    /// Number of shared convs and fcs after the `type` preset, with mmdet's constraints.
    pub(crate) fn layout(&self) -> Result<Layout, BBoxHeadError> {
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
