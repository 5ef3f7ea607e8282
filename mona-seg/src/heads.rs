//! mmseg decode heads: `ConvModule`, `UPerHead` (PPM + FPN) and `FCNHead`, with the official
//! state-dict names (`psp_modules.0.1.conv.weight`, `lateral_convs.0.bn.running_mean`,
//! `convs.0.conv.weight`, `conv_seg.weight`, ...).

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::Deserialize;

use mona_core::config::ConfigNode;
use mona_core::nn::{BatchNormKind, Conv2d, NormCfg, init};
use mona_core::ops::pool::adaptive_avg_pool2d;
use mona_core::ops::resize::bilinear;
use mona_core::random::Draw;
use mona_core::registry::BuildError;

/// mmcv `ConvModule` (conv → BN → ReLU), shared with the mmdet box heads.
pub use mona_core::nn::ConvModule;

/// `nn.Dropout2d`: whole channels are zeroed while training, the rest scaled by 1/(1-p).
#[derive(Module, Debug)]
pub struct Dropout2d {
    prob: f64,
}

impl Dropout2d {
    pub fn new(prob: f64) -> Self {
        Self { prob }
    }

    pub fn forward(&self, x: Tensor<4>, training: bool) -> Tensor<4> {
        if !training || self.prob <= 0.0 {
            return x;
        }
        let [b, c, _, _] = x.dims();
        let device = x.device();
        let mask = Draw::next(b * c, &device).mask([b, c, 1, 1], 1.0 - self.prob, &device);
        x * mask
    }
}

/// The `cls_seg` of `BaseDecodeHead`: dropout then a 1×1 conv with bias, init N(0, 0.01), 0.
pub fn conv_seg(channels: usize, num_classes: usize, device: &Device) -> Conv2d {
    let mut conv = Conv2d::torch_default(channels, num_classes, 1, 1, 0, 1, true, device);
    conv.weight = init::normal([num_classes, channels, 1, 1], 0.01, device);
    conv.bias = Some(init::constant([num_classes], 0.0, device));
    conv
}

/// A channel count or a list of them (`in_channels`, `in_index` of mmseg heads).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(usize),
    Many(Vec<usize>),
}

impl OneOrMany {
    pub fn to_vec(&self) -> Vec<usize> {
        match self {
            OneOrMany::One(v) => vec![*v],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// mmseg `CrossEntropyLoss` settings of a head.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossDecodeCfg {
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default)]
    pub use_sigmoid: bool,
    #[serde(default = "one")]
    pub loss_weight: f64,
    #[serde(default)]
    pub avg_non_ignore: bool,
}

fn one() -> f64 {
    1.0
}
fn default_dropout() -> f64 {
    0.1
}
fn default_ignore() -> i64 {
    255
}

/// The keys every decode head reads (mmseg `BaseDecodeHead`); [`HeadCfg::from_node`] accepts
/// these plus the keys the head's registration names.
pub const BASE_HEAD_KEYS: &[&str] = &[
    "type",
    "in_channels",
    "in_index",
    "channels",
    "num_classes",
    "dropout_ratio",
    "norm_cfg",
    "align_corners",
    "loss_decode",
    "ignore_index",
];

/// mmseg `BaseDecodeHead`'s keys, shared by every decode head; a head reads its own keys from
/// its node (`pool_scales` of `UPerHead`, `num_convs` of `FCNHead`, ...).
#[derive(Debug, Clone, Deserialize)]
pub struct HeadCfg {
    #[serde(rename = "type")]
    pub type_name: String,
    pub in_channels: OneOrMany,
    pub in_index: OneOrMany,
    pub channels: usize,
    pub num_classes: usize,
    #[serde(default = "default_dropout")]
    pub dropout_ratio: f64,
    #[serde(default)]
    /// `BN` / `SyncBN` (see [`BatchNormKind`]).
    pub norm_cfg: Option<NormCfg>,
    #[serde(default)]
    pub align_corners: bool,
    #[serde(default)]
    pub loss_decode: Option<LossDecodeCfg>,
    #[serde(default = "default_ignore")]
    pub ignore_index: i64,
}

impl HeadCfg {
    /// Reads and checks a head node (the loss must be softmax CE, corners unaligned). A key
    /// that is neither a [`BASE_HEAD_KEYS`] one nor one of `own_keys` (the head's own) is an
    /// error naming it and the nearest known key.
    pub fn from_node(node: &ConfigNode<'_>, own_keys: &[&'static str]) -> Result<Self, BuildError> {
        check_head_keys(node, own_keys)?;
        let cfg: HeadCfg = node.extract()?;
        if cfg.align_corners {
            return Err(BuildError::invalid(
                node,
                Some("align_corners"),
                "only align_corners = false is supported",
            ));
        }
        if cfg.num_classes == 0 {
            return Err(BuildError::invalid(
                node,
                Some("num_classes"),
                "must be positive",
            ));
        }
        if let Some(l) = &cfg.loss_decode
            && (l.type_name != "CrossEntropyLoss" || l.use_sigmoid)
        {
            return Err(BuildError::invalid(
                node,
                Some("loss_decode"),
                "only softmax CrossEntropyLoss is supported",
            ));
        }
        if let Some(n) = &cfg.norm_cfg
            && n.batch_norm_kind().is_none()
        {
            return Err(BuildError::invalid(
                node,
                Some("norm_cfg.type"),
                format!("{}: only BN / SyncBN are supported", n.type_name),
            ));
        }
        Ok(cfg)
    }

    /// The heads' batch norm (none without a `norm_cfg`).
    pub fn norm_kind(&self) -> Option<BatchNormKind> {
        self.norm_cfg.as_ref().and_then(NormCfg::batch_norm_kind)
    }

    pub fn loss_weight(&self) -> f64 {
        self.loss_decode.as_ref().map_or(1.0, |l| l.loss_weight)
    }

    pub fn avg_non_ignore(&self) -> bool {
        self.loss_decode.as_ref().is_some_and(|l| l.avg_non_ignore)
    }
}

/// Refuses a key of a head node that neither `BaseDecodeHead` nor the head itself reads: a
/// typo would otherwise silently leave a setting at its default.
fn check_head_keys(node: &ConfigNode<'_>, own_keys: &[&'static str]) -> Result<(), BuildError> {
    let toml::Value::Table(table) = node.value() else {
        return Ok(());
    };
    let known: Vec<&'static str> = BASE_HEAD_KEYS.iter().chain(own_keys).copied().collect();
    match table.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => {
            let nearest = mona_core::registry::closest(key, &known);
            let hint = match nearest.first() {
                Some(n) => format!(" (did you mean {n}?)"),
                None => String::new(),
            };
            Err(BuildError::invalid(
                node,
                Some(key),
                format!(
                    "unknown key of a {}{hint}; it reads {}",
                    node.type_name().unwrap_or("decode head"),
                    known[1..].join(", ")
                ),
            ))
        }
    }
}

/// One PPM branch: `Sequential(AdaptiveAvgPool2d, ConvModule)`; slot 0 (the pool) has no
/// parameters, so the conv module sits at index 1 as in the official keys
/// (`psp_modules.{i}.1.conv.weight`).
pub type PpmBranch = Vec<Option<ConvModule>>;

/// mmseg `UPerHead`.
#[derive(Module, Debug)]
pub struct UPerHead {
    pub psp_modules: Vec<PpmBranch>,
    pub bottleneck: ConvModule,
    pub lateral_convs: Vec<ConvModule>,
    pub fpn_convs: Vec<ConvModule>,
    pub fpn_bottleneck: ConvModule,
    pub conv_seg: Conv2d,
    pub dropout: Dropout2d,
    pool_scales: Vec<usize>,
    in_index: Vec<usize>,
}

impl UPerHead {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_channels: &[usize],
        in_index: Vec<usize>,
        channels: usize,
        pool_scales: Vec<usize>,
        num_classes: usize,
        dropout: f64,
        norm: Option<BatchNormKind>,
        device: &Device,
    ) -> Self {
        let last = *in_channels.last().unwrap_or(&channels);
        let levels = in_channels.len();
        Self {
            psp_modules: pool_scales
                .iter()
                .map(|_| vec![None, Some(ConvModule::new(last, channels, 1, norm, device))])
                .collect(),
            bottleneck: ConvModule::new(
                last + pool_scales.len() * channels,
                channels,
                3,
                norm,
                device,
            ),
            lateral_convs: in_channels[..levels.saturating_sub(1)]
                .iter()
                .map(|&c| ConvModule::new(c, channels, 1, norm, device))
                .collect(),
            fpn_convs: in_channels[..levels.saturating_sub(1)]
                .iter()
                .map(|_| ConvModule::new(channels, channels, 3, norm, device))
                .collect(),
            fpn_bottleneck: ConvModule::new(levels * channels, channels, 3, norm, device),
            conv_seg: conv_seg(channels, num_classes, device),
            dropout: Dropout2d::new(dropout),
            pool_scales,
            in_index,
        }
    }

    pub fn from_cfg(
        cfg: &HeadCfg,
        node: &ConfigNode<'_>,
        device: &Device,
    ) -> Result<Self, BuildError> {
        let in_channels = cfg.in_channels.to_vec();
        let in_index = cfg.in_index.to_vec();
        if in_channels.len() != in_index.len() || in_channels.len() < 2 {
            return Err(BuildError::invalid(
                node,
                Some("in_index"),
                "UPerHead needs at least two levels and one in_index per in_channels entry",
            ));
        }
        Ok(Self::new(
            &in_channels,
            in_index,
            cfg.channels,
            node.extract_field::<Vec<usize>>("pool_scales")?
                .unwrap_or_else(|| vec![1, 2, 3, 6]),
            cfg.num_classes,
            cfg.dropout_ratio,
            cfg.norm_kind(),
            device,
        ))
    }

    pub fn in_index(&self) -> &[usize] {
        &self.in_index
    }

    fn psp_forward(&self, x: Tensor<4>, training: bool) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let mut outs = vec![x.clone()];
        for (branch, &s) in self.psp_modules.iter().zip(&self.pool_scales) {
            let pooled = adaptive_avg_pool2d(x.clone(), [s, s]);
            let y = match branch.get(1).and_then(Option::as_ref) {
                Some(cm) => cm.forward(pooled, training),
                None => pooled,
            };
            outs.push(bilinear(y, [h, w]));
        }
        self.bottleneck.forward(Tensor::cat(outs, 1), training)
    }

    /// Stride-4 logits of the selected backbone levels.
    pub fn forward(&self, feats: &[Tensor<4>], training: bool) -> Tensor<4> {
        let inputs: Vec<Tensor<4>> = self.in_index.iter().map(|&i| feats[i].clone()).collect();
        let levels = inputs.len();
        let mut laterals: Vec<Tensor<4>> = self
            .lateral_convs
            .iter()
            .zip(&inputs)
            .map(|(l, x)| l.forward(x.clone(), training))
            .collect();
        laterals.push(self.psp_forward(inputs[levels - 1].clone(), training));
        for i in (1..levels).rev() {
            let [_, _, h, w] = laterals[i - 1].dims();
            let up = bilinear(laterals[i].clone(), [h, w]);
            laterals[i - 1] = laterals[i - 1].clone() + up;
        }
        let mut fpn_outs: Vec<Tensor<4>> = self
            .fpn_convs
            .iter()
            .zip(&laterals)
            .map(|(c, x)| c.forward(x.clone(), training))
            .collect();
        fpn_outs.push(laterals[levels - 1].clone());
        let [_, _, h0, w0] = fpn_outs[0].dims();
        for out in fpn_outs.iter_mut().skip(1) {
            *out = bilinear(out.clone(), [h0, w0]);
        }
        let y = self
            .fpn_bottleneck
            .forward(Tensor::cat(fpn_outs, 1), training);
        self.conv_seg.forward(self.dropout.forward(y, training))
    }
}

/// mmseg `FCNHead` (`concat_input = false`).
#[derive(Module, Debug)]
pub struct FCNHead {
    pub convs: Vec<ConvModule>,
    pub conv_seg: Conv2d,
    pub dropout: Dropout2d,
    in_index: usize,
}

impl FCNHead {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        in_channels: usize,
        in_index: usize,
        channels: usize,
        num_convs: usize,
        kernel: usize,
        num_classes: usize,
        dropout: f64,
        norm: Option<BatchNormKind>,
        device: &Device,
    ) -> Self {
        let convs = (0..num_convs)
            .map(|i| {
                let c_in = if i == 0 { in_channels } else { channels };
                ConvModule::new(c_in, channels, kernel, norm, device)
            })
            .collect();
        let seg_in = if num_convs == 0 {
            in_channels
        } else {
            channels
        };
        Self {
            convs,
            conv_seg: conv_seg(seg_in, num_classes, device),
            dropout: Dropout2d::new(dropout),
            in_index,
        }
    }

    pub fn from_cfg(
        cfg: &HeadCfg,
        node: &ConfigNode<'_>,
        device: &Device,
    ) -> Result<Self, BuildError> {
        let (in_channels, in_index) =
            match (&cfg.in_channels.to_vec()[..], &cfg.in_index.to_vec()[..]) {
                ([c], [i]) => (*c, *i),
                _ => {
                    return Err(BuildError::invalid(
                        node,
                        Some("in_channels"),
                        "FCNHead takes one level (integer in_channels and in_index)",
                    ));
                }
            };
        if node.extract_field::<bool>("concat_input")?.unwrap_or(true) {
            return Err(BuildError::invalid(
                node,
                Some("concat_input"),
                "only concat_input = false is supported",
            ));
        }
        Ok(Self::new(
            in_channels,
            in_index,
            cfg.channels,
            node.extract_field::<usize>("num_convs")?.unwrap_or(2),
            node.extract_field::<usize>("kernel_size")?.unwrap_or(3),
            cfg.num_classes,
            cfg.dropout_ratio,
            cfg.norm_kind(),
            device,
        ))
    }

    pub fn in_index(&self) -> usize {
        self.in_index
    }

    pub fn forward(&self, feats: &[Tensor<4>], training: bool) -> Tensor<4> {
        let mut x = feats[self.in_index].clone();
        for c in &self.convs {
            x = c.forward(x, training);
        }
        self.conv_seg.forward(self.dropout.forward(x, training))
    }
}
