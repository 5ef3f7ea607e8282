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

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use mona_core::nn::{ConvModule, Linear, NormCfg, init};

use super::bbox_config::{BBoxHeadConfig, BBoxHeadError};
use super::bbox_logic::BBoxHeadLogic;
use super::roi_align::Roi;
use super::stage_heads::BBoxHead;
use crate::ops::boxes::Box4;

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

/// Builds one stage's box head and its logic; the detectors build box heads only through
/// [`BBoxHeadEntry`]. A plugin's builder returns [`BBoxHead::plugin`] of its own module.
pub type BBoxHeadBuilder =
    fn(&BBoxHeadConfig, &Device) -> Result<(BBoxHead, BBoxHeadLogic), BBoxHeadError>;

mona_core::declare_registry! {
    /// Box heads of RoI head stages, selected by `model.roi_head.bbox_head[i].type`.
    pub struct BBoxHeadEntry: "bbox head" => BBoxHeadBuilder;
}

/// mmdet's `ConvFCBBoxHead` and its presets: the layout comes from the `type` in `cfg`.
fn build_conv_fc(
    cfg: &BBoxHeadConfig,
    device: &Device,
) -> Result<(BBoxHead, BBoxHeadLogic), BBoxHeadError> {
    Ok((
        BBoxHead::ConvFc(ConvFcBBoxHead::new(cfg, device)?),
        BBoxHeadLogic::new(cfg)?,
    ))
}

inventory::submit! { BBoxHeadEntry::new("ConvFCBBoxHead", build_conv_fc) }
inventory::submit! { BBoxHeadEntry::new("Shared2FCBBoxHead", build_conv_fc) }
inventory::submit! { BBoxHeadEntry::new("Shared4Conv1FCBBoxHead", build_conv_fc) }
