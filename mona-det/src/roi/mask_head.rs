//! mmdet 2.x's `FCNMaskHead` (`mmdet/models/roi_heads/mask_heads/fcn_mask_head.py`): the
//! mask branch of (Cascade) Mask R-CNN, and its loss (`FCNMaskHead.loss` →
//! `mask_cross_entropy`). Targets and the test-time paste are host-side code in
//! [`super::mask_ops`].
//!
//! `num_convs × ConvModule(conv k×k + bias, ReLU, no norm)` → `upsample` (`deconv`: a
//! `ConvTranspose2d(k = s, stride = s)`) → ReLU → `conv_logits` (1×1) → `(N, C, 2·14, 2·14)`.
//! Parameter names are mmdet's state-dict keys (`convs.0.conv.weight`, `upsample.weight`
//! `(in, out, s, s)`, `upsample.bias`, `conv_logits.weight`).

use burn::module::{Module, Param};
use burn::tensor::activation::{log_sigmoid, relu};
use burn::tensor::{Device, Int, Tensor, TensorData};
use mona_core::nn::{Conv2d, amp, init};
use serde::Deserialize;

use super::stage_heads::{MaskHead, MaskLossSettings};
use crate::fpn::ConvModule;

fn four() -> usize {
    4
}
fn fourteen() -> usize {
    14
}
fn three() -> usize {
    3
}
fn channels() -> usize {
    256
}
fn eighty() -> usize {
    80
}
fn two() -> usize {
    2
}
fn one() -> f32 {
    1.0
}
fn deconv() -> String {
    "deconv".to_string()
}
fn yes() -> bool {
    true
}

/// `upsample_cfg` of `FCNMaskHead`; only mmdet's default `deconv` is implemented.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskUpsampleConfig {
    #[serde(rename = "type", default = "deconv")]
    pub kind: String,
    #[serde(default = "two")]
    pub scale_factor: usize,
}

impl Default for MaskUpsampleConfig {
    fn default() -> Self {
        Self {
            kind: deconv(),
            scale_factor: 2,
        }
    }
}

/// `loss_mask` (`CrossEntropyLoss(use_mask=True)`, i.e. mmdet's `mask_cross_entropy`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskLossConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default = "yes")]
    pub use_mask: bool,
    #[serde(default)]
    pub use_sigmoid: bool,
    #[serde(default = "one")]
    pub loss_weight: f32,
}

impl Default for MaskLossConfig {
    fn default() -> Self {
        Self {
            kind: Some("CrossEntropyLoss".into()),
            use_mask: true,
            use_sigmoid: false,
            loss_weight: 1.0,
        }
    }
}

/// The `mask_head` config (`type = "FCNMaskHead"`), defaults as mmdet 2.x.
/// `conv_cfg` / `norm_cfg` are accepted only as `null` (the Mona config has no norm here).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FcnMaskHeadConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default = "four")]
    pub num_convs: usize,
    /// The RoI feature size the mask extractor produces (mmdet keeps it for bookkeeping; the
    /// convs are size-agnostic and the output is `scale_factor ×` the input).
    #[serde(default = "fourteen")]
    pub roi_feat_size: usize,
    #[serde(default = "channels")]
    pub in_channels: usize,
    #[serde(default = "three")]
    pub conv_kernel_size: usize,
    #[serde(default = "channels")]
    pub conv_out_channels: usize,
    #[serde(default = "eighty")]
    pub num_classes: usize,
    #[serde(default)]
    pub class_agnostic: bool,
    #[serde(default)]
    pub upsample_cfg: MaskUpsampleConfig,
    #[serde(default)]
    pub conv_cfg: Option<serde_json::Value>,
    #[serde(default)]
    pub norm_cfg: Option<serde_json::Value>,
    /// mmdet 2.x's `init_cfg`; only `null` (the head's own `init_weights`) is implemented.
    #[serde(default)]
    pub init_cfg: Option<serde_json::Value>,
    #[serde(default)]
    pub loss_mask: MaskLossConfig,
}

/// Why a mask head cannot be built or its loss computed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MaskHeadError {
    #[error("mask_head.type `{0}`: only FCNMaskHead is implemented")]
    Type(String),
    #[error("mask_head.upsample_cfg.type `{0}`: only `deconv` is implemented")]
    Upsample(String),
    #[error("mask_head.upsample_cfg.scale_factor must be positive")]
    ScaleFactor,
    #[error("mask_head.{0}: only null is implemented (plain conv, no norm, mmdet's own init)")]
    Unsupported(&'static str),
    #[error("mask_head.conv_kernel_size {0} must be odd (mmdet pads by (k − 1) / 2)")]
    Kernel(usize),
    #[error("mask_head.{0} must be positive")]
    Zero(&'static str),
    #[error("mask_head.loss_mask: expected CrossEntropyLoss with use_mask = true, got {0}")]
    Loss(String),
    #[error("mask loss: {what} has {got} values, expected {expected}")]
    Shape {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("mask loss: label {label} of RoI {roi} is outside 0..{num_classes}")]
    Label {
        roi: usize,
        label: i64,
        num_classes: usize,
    },
}

/// The deconv upsampler: `ConvTranspose2d(in, out, kernel = s, stride = s)` with PyTorch's
/// weight layout `(in, out, s, s)`.
///
/// Why not burn's `conv_transpose2d`: with kernel = stride the output windows do not overlap,
/// so `out[n, o, i·s + a, j·s + b] = bias[o] + Σ_c x[n, c, i, j] · W[c, o, a, b]` is exactly
/// one matrix product over channels followed by a pixel shuffle. That is the same sum (up to
/// summation order), differentiable on every backend, a plain GEMM on the GPU, and it takes
/// part in bf16 autocast like the other convs.
#[derive(Module, Debug)]
pub struct DeconvUpsample {
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    scale: usize,
}

impl DeconvUpsample {
    /// mmdet `FCNMaskHead.init_weights`: `kaiming_normal_(mode='fan_out', relu)`, bias 0.
    /// PyTorch's fan_out of a `(in, out, s, s)` weight is `size(0) · s² = in · s²`.
    pub fn new(c_in: usize, c_out: usize, scale: usize, device: &Device) -> Self {
        let std = (2.0 / (c_in * scale * scale) as f64).sqrt();
        Self {
            weight: init::normal([c_in, c_out, scale, scale], std, device),
            bias: init::constant([c_out], 0.0, device),
            scale,
        }
    }

    /// `(N, in, H, W)` → `(N, out, s·H, s·W)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c_in, h, w] = x.dims();
        let s = self.scale;
        let weight = self.weight.val();
        let c_out = weight.dims()[1];
        if n == 0 {
            // see `FcnMaskHead::forward`: no empty-batch matmul
            return Tensor::zeros([0, c_out, h * s, w * s], &x.device());
        }
        // (in, out·s·s)ᵀ · (N, in, H·W) → (N, out·s·s, H·W), rows ordered (o, a, b)
        let wt = weight.reshape([c_in, c_out * s * s]).transpose();
        let y = amp::matmul(
            wt.reshape([1, c_out * s * s, c_in]),
            x.reshape([n, c_in, h * w]),
        );
        let y = y.reshape([n, c_out, s * s * h * w]) + self.bias.val().reshape([1, c_out, 1]);
        // (N, o, a, b, i, j) → (N, o, i, a, j, b) → (N, o, i·s + a, j·s + b)
        y.reshape([n, c_out, s, s, h, w])
            .permute([0, 1, 4, 2, 5, 3])
            .reshape([n, c_out, h * s, w * s])
    }
}

/// mmdet's `FCNMaskHead`.
#[derive(Module, Debug)]
pub struct FcnMaskHead {
    pub convs: Vec<ConvModule>,
    pub upsample: DeconvUpsample,
    pub conv_logits: Conv2d,
    num_classes: usize,
    class_agnostic: bool,
    loss_weight: f32,
}

/// `N(0, 2 / fan_out)` for a `(out, in, k, k)` conv weight and a zero bias: mmcv's
/// `kaiming_init` (mode fan_out, relu, normal), used both by `ConvModule.init_weights` and by
/// `FCNMaskHead.init_weights` for `conv_logits`.
fn kaiming_conv(c_in: usize, c_out: usize, k: usize, device: &Device) -> Conv2d {
    let mut conv = Conv2d::torch_default(c_in, c_out, k, 1, (k - 1) / 2, 1, true, device);
    let std = (2.0 / (c_out * k * k) as f64).sqrt();
    conv.weight = init::normal([c_out, c_in, k, k], std, device);
    conv.bias = Some(init::constant([c_out], 0.0, device));
    conv
}

impl FcnMaskHead {
    pub fn new(cfg: &FcnMaskHeadConfig, device: &Device) -> Result<Self, MaskHeadError> {
        if let Some(k) = cfg.kind.as_deref()
            && k != "FCNMaskHead"
        {
            return Err(MaskHeadError::Type(k.to_string()));
        }
        if cfg.upsample_cfg.kind != "deconv" {
            return Err(MaskHeadError::Upsample(cfg.upsample_cfg.kind.clone()));
        }
        if cfg.upsample_cfg.scale_factor == 0 {
            return Err(MaskHeadError::ScaleFactor);
        }
        if cfg.conv_cfg.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(MaskHeadError::Unsupported("conv_cfg"));
        }
        if cfg.norm_cfg.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(MaskHeadError::Unsupported("norm_cfg"));
        }
        if cfg.init_cfg.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(MaskHeadError::Unsupported("init_cfg"));
        }
        if cfg.conv_kernel_size.is_multiple_of(2) {
            return Err(MaskHeadError::Kernel(cfg.conv_kernel_size));
        }
        for (name, v) in [
            ("in_channels", cfg.in_channels),
            ("conv_out_channels", cfg.conv_out_channels),
            ("num_classes", cfg.num_classes),
        ] {
            if v == 0 {
                return Err(MaskHeadError::Zero(name));
            }
        }
        let loss = &cfg.loss_mask;
        let ce = loss.kind.as_deref().is_none_or(|k| k == "CrossEntropyLoss");
        if !ce || !loss.use_mask || loss.use_sigmoid {
            return Err(MaskHeadError::Loss(format!("{loss:?}")));
        }
        let k = cfg.conv_kernel_size;
        let convs = (0..cfg.num_convs)
            .map(|i| {
                let c_in = if i == 0 {
                    cfg.in_channels
                } else {
                    cfg.conv_out_channels
                };
                ConvModule {
                    conv: kaiming_conv(c_in, cfg.conv_out_channels, k, device),
                }
            })
            .collect();
        // `upsample_in_channels`: the last conv's output, or the input when there is none
        let up_in = if cfg.num_convs > 0 {
            cfg.conv_out_channels
        } else {
            cfg.in_channels
        };
        let out_channels = if cfg.class_agnostic {
            1
        } else {
            cfg.num_classes
        };
        Ok(Self {
            convs,
            upsample: DeconvUpsample::new(
                up_in,
                cfg.conv_out_channels,
                cfg.upsample_cfg.scale_factor,
                device,
            ),
            conv_logits: kaiming_conv(cfg.conv_out_channels, out_channels, 1, device),
            num_classes: cfg.num_classes,
            class_agnostic: cfg.class_agnostic,
            loss_weight: loss.loss_weight,
        })
    }

    /// RoI features `(N, in, 14, 14)` → mask logits `(N, C, 28, 28)` (`C = 1` when
    /// class-agnostic).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, _, h, w] = x.dims();
        if n == 0 {
            // burn 0.22.1 (flex) crashes (SIGSEGV) on a broadcast matmul with an empty batch,
            // which the 1×1 convs use; no RoI means no output, and mmdet's loss is a zero
            let c = self.conv_logits.weight.dims()[0];
            let s = self.upsample.scale;
            return Tensor::zeros([0, c, h * s, w * s], &x.device());
        }
        let mut x = x;
        for conv in &self.convs {
            x = relu(conv.forward(x));
        }
        x = relu(self.upsample.forward(x));
        self.conv_logits.forward(x)
    }

    /// `FCNMaskHead.loss`: BCE-with-logits of each RoI's gt-label channel (channel 0 when
    /// class-agnostic) against its binary targets, averaged over all `N·S·S` elements
    /// (`mask_cross_entropy`, reduction mean), times `loss_weight`.
    ///
    /// `mask_targets` holds `N·S·S` values in RoI order (see
    /// [`super::mask_ops::mask_targets`]); `labels` the `N` gt labels (`0..num_classes`).
    /// With no RoI the loss is `mask_pred.sum()` (= 0, keeping the graph), as in mmdet.
    pub fn loss(
        &self,
        mask_pred: Tensor<4>,
        mask_targets: &[f32],
        labels: &[i64],
    ) -> Result<Tensor<1>, MaskHeadError> {
        self.loss_settings().loss(mask_pred, mask_targets, labels)
    }

    /// What its loss needs besides the predictions.
    pub fn loss_settings(&self) -> MaskLossSettings {
        MaskLossSettings {
            num_classes: self.num_classes,
            class_agnostic: self.class_agnostic,
            loss_weight: self.loss_weight,
        }
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    pub fn class_agnostic(&self) -> bool {
        self.class_agnostic
    }
}

/// mmdet's `mask_cross_entropy` (mean reduction, no class weight) × `loss_weight`; see
/// [`FcnMaskHead::loss`]. `mask_pred` is `(N, C', S, S)` with `C' = 1` when
/// `class_agnostic`, else `C' = num_classes`.
pub fn mask_loss(
    mask_pred: Tensor<4>,
    mask_targets: &[f32],
    labels: &[i64],
    num_classes: usize,
    class_agnostic: bool,
    loss_weight: f32,
) -> Result<Tensor<1>, MaskHeadError> {
    let [n, c, h, w] = mask_pred.dims();
    if labels.len() != n {
        return Err(MaskHeadError::Shape {
            what: "labels",
            got: labels.len(),
            expected: n,
        });
    }
    if mask_targets.len() != n * h * w {
        return Err(MaskHeadError::Shape {
            what: "mask_targets",
            got: mask_targets.len(),
            expected: n * h * w,
        });
    }
    let channels = if class_agnostic { 1 } else { num_classes };
    if c != channels {
        return Err(MaskHeadError::Shape {
            what: "mask_pred channels",
            got: c,
            expected: channels,
        });
    }
    if n == 0 {
        // mmdet: `loss_mask = mask_pred.sum()` (a zero that keeps the graph)
        return Ok(mask_pred.sum());
    }
    let mut rows = Vec::with_capacity(n);
    for (roi, &label) in labels.iter().enumerate() {
        if label < 0 || label as usize >= num_classes {
            return Err(MaskHeadError::Label {
                roi,
                label,
                num_classes,
            });
        }
        let channel = if class_agnostic { 0 } else { label as usize };
        rows.push((roi * c + channel) as i64);
    }
    let device = mask_pred.device();
    let index = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &device);
    // `pred[arange(N), label]`: one row of S·S logits per RoI
    let pred = mask_pred.reshape([n * c, h * w]).select(0, index);
    let target =
        Tensor::<2>::from_data(TensorData::new(mask_targets.to_vec(), [n, h * w]), &device);
    Ok(bce_with_logits(pred, target).mean().mul_scalar(loss_weight))
}

/// PyTorch's `binary_cross_entropy_with_logits` (no weights, no reduction) as
/// `(1 − t)·x − log σ(x)`: burn's `log_sigmoid` is the max-shifted log-sum-exp PyTorch
/// uses and has an exact backward, so the gradient is `σ(x) − t` everywhere. (The
/// `max(x, 0) − x·t + log1p(e^−|x|)` form differentiates `max` and `|x|` at 0 and gets
/// `−t` instead of `½ − t` for a logit of exactly 0.)
fn bce_with_logits(x: Tensor<2>, t: Tensor<2>) -> Tensor<2> {
    x.clone() * t.neg().add_scalar(1.0) - log_sigmoid(x)
}

/// Builds one stage's mask head.
pub type MaskHeadBuilder = fn(&FcnMaskHeadConfig, &Device) -> Result<MaskHead, MaskHeadError>;

mona_core::declare_registry! {
    /// Mask heads of RoI head stages, selected by `model.roi_head.mask_head[i].type`.
    pub struct MaskHeadEntry: "mask head" => MaskHeadBuilder;
}

inventory::submit! {
    MaskHeadEntry::new("FCNMaskHead", |cfg, device| FcnMaskHead::new(cfg, device).map(MaskHead::Fcn))
}
