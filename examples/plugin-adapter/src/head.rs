//! `SegformerHead` (mmseg 0.x): SegFormer's all-MLP decoder as a decode head registered from
//! outside the core.
//!
//! Each selected level goes through a 1×1 `ConvModule` to `channels`, is resized to the finest
//! selected level, the levels are concatenated, fused by another 1×1 `ConvModule`, and
//! classified by `BaseDecodeHead`'s dropout + 1×1 `conv_seg`. Parameter keys are mmseg's:
//! `convs.{i}.conv.weight`, `convs.{i}.bn.*`, `fusion_conv.conv.weight`, `fusion_conv.bn.*`,
//! `conv_seg.{weight,bias}`.
//!
//! ```toml
//! [model.decode_head]
//! type = "SegformerHead"
//! in_channels = [32, 64, 128, 256]
//! in_index = [0, 1, 2, 3]
//! channels = 32
//! num_classes = 4
//! interpolate_mode = "bilinear"   # the only mode supported
//! ```

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use mona_core::config::ConfigNode;
use mona_core::nn::{Conv2d, ConvModule};
use mona_core::ops::resize::bilinear;
use mona_core::registry::BuildError;
use mona_seg::decode_head::{DecodeHead, HeadBuilder, SegDecodeHead, SegHeadEntry};
use mona_seg::heads::{Dropout2d, HeadCfg, conv_seg};

/// The registered name (`[model.decode_head] type = "SegformerHead"`).
pub const NAME: &str = "SegformerHead";

/// mmseg's `SegformerHead`.
#[derive(Module, Debug)]
pub struct SegformerHead {
    /// One 1×1 projection to `channels` per selected level.
    pub convs: Vec<ConvModule>,
    /// The 1×1 fusion of the concatenated levels.
    pub fusion_conv: ConvModule,
    pub conv_seg: Conv2d,
    pub dropout: Dropout2d,
    in_index: Vec<usize>,
}

impl SegformerHead {
    /// A fresh head for levels with `in_channels` at `in_index`.
    pub fn new(
        cfg: &HeadCfg,
        in_channels: &[usize],
        in_index: Vec<usize>,
        device: &Device,
    ) -> Self {
        let norm = cfg.norm_kind();
        Self {
            convs: in_channels
                .iter()
                .map(|&c| ConvModule::new(c, cfg.channels, 1, norm, device))
                .collect(),
            fusion_conv: ConvModule::new(
                cfg.channels * in_channels.len(),
                cfg.channels,
                1,
                norm,
                device,
            ),
            conv_seg: conv_seg(cfg.channels, cfg.num_classes, device),
            dropout: Dropout2d::new(cfg.dropout_ratio),
            in_index,
        }
    }
}

impl SegDecodeHead for SegformerHead {
    fn forward(&self, feats: &[Tensor<4>], training: bool) -> Tensor<4> {
        let [_, _, h, w] = feats[self.in_index[0]].dims();
        let outs: Vec<Tensor<4>> = self
            .convs
            .iter()
            .zip(&self.in_index)
            .map(|(conv, &i)| bilinear(conv.forward(feats[i].clone(), training), [h, w]))
            .collect();
        let fused = self.fusion_conv.forward(Tensor::cat(outs, 1), training);
        self.conv_seg.forward(self.dropout.forward(fused, training))
    }
}

/// Checks the head's own keys and builds it.
fn build(cfg: &HeadCfg, node: &ConfigNode<'_>, device: &Device) -> Result<DecodeHead, BuildError> {
    if let Some(mode) = node.extract_field::<String>("interpolate_mode")?
        && mode != "bilinear"
    {
        return Err(BuildError::invalid(
            node,
            Some("interpolate_mode"),
            format!("{mode}: only \"bilinear\" is supported"),
        ));
    }
    let in_channels = cfg.in_channels.to_vec();
    let in_index = cfg.in_index.to_vec();
    if in_channels.len() != in_index.len() {
        return Err(BuildError::invalid(
            node,
            Some("in_index"),
            format!(
                "{} entries for {} in_channels: SegformerHead takes one in_index per level",
                in_index.len(),
                in_channels.len()
            ),
        ));
    }
    let head = SegformerHead::new(cfg, &in_channels, in_index, device);
    DecodeHead::plugin(head).map_err(|e| BuildError::invalid(node, None, e.to_string()))
}

inventory::submit! {
    SegHeadEntry::new(NAME, HeadBuilder { keys: &["interpolate_mode"], build })
}

/// Lives next to the registration so that referencing it keeps the registration's object
/// code (see [`crate::link`]).
#[inline(never)]
pub(crate) fn link() {
    std::hint::black_box(build as fn(&HeadCfg, &ConfigNode<'_>, &Device) -> _);
}
