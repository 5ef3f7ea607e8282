//! Decode heads chosen by name: the registry, the head type a segmentor holds, and the trait a
//! plugin implements to add a head without touching this crate.
//!
//! `model.decode_head.type` and `model.auxiliary_head.type` are looked up in
//! [`SegHeadEntry`]. The built-in heads are variants of [`DecodeHead`]; a plugin head is an
//! ordinary `#[derive(Module)]` struct implementing [`SegDecodeHead`], held type-erased in the
//! [`DecodeHead::Plugin`] variant (see `mona_core::dyn_module` for why: burn's `Module` is not
//! object-safe), with its own field names as parameter keys.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Tensor};

use mona_core::config::ConfigNode;
use mona_core::dyn_module::{DynModule, UnsupportedRank};
use mona_core::registry::{BuildError, lookup};

use crate::heads::{FCNHead, HeadCfg, UPerHead};

/// A decode head defined outside this crate.
pub trait SegDecodeHead: Module + ModuleDisplay + Sync + 'static {
    /// Logits `(B, num_classes, h, w)` at any resolution (the segmentor resizes them) from
    /// the backbone's feature maps, finest first.
    fn forward(&self, feats: &[Tensor<4>], training: bool) -> Tensor<4>;
}

/// The functions a segmentor calls on a plugin head, filled in for its concrete type.
#[derive(Clone, Copy, Debug)]
pub struct HeadOps {
    forward: fn(&PluginHead, &[Tensor<4>], bool) -> Tensor<4>,
}

/// A plugin's decode head, its type erased.
pub type PluginHead = DynModule<HeadOps>;

/// A decode head of any registered type. Variant names never appear in parameter keys.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum DecodeHead {
    UPer(UPerHead),
    Fcn(FCNHead),
    Plugin(PluginHead),
}

impl DecodeHead {
    /// Wraps a plugin's head. Fails only for a parameter of rank above
    /// `mona_core::dyn_module::MAX_RANK`.
    pub fn plugin<H: SegDecodeHead>(head: H) -> Result<Self, UnsupportedRank> {
        let ops = HeadOps {
            forward: |m, feats, training| match m.get::<H>() {
                Some(h) => h.forward(feats, training),
                // The ops are built here together with the module they are given.
                None => unreachable!("a HeadOps travels with its own head type"),
            },
        };
        DynModule::new(head, ops).map(DecodeHead::Plugin)
    }

    pub fn forward(&self, feats: &[Tensor<4>], training: bool) -> Tensor<4> {
        match self {
            DecodeHead::UPer(h) => h.forward(feats, training),
            DecodeHead::Fcn(h) => h.forward(feats, training),
            DecodeHead::Plugin(h) => (h.ops().forward)(h, feats, training),
        }
    }
}

/// How a registered head is built.
#[derive(Clone, Copy)]
pub struct HeadBuilder {
    /// The head's own config keys, beyond `BaseDecodeHead`'s ([`crate::heads::BASE_HEAD_KEYS`]);
    /// any other key of its node is an error.
    pub keys: &'static [&'static str],
    /// Builds the head from the shared settings and its node (for its own keys).
    pub build: fn(&HeadCfg, &ConfigNode<'_>, &Device) -> Result<DecodeHead, BuildError>,
}

mona_core::declare_registry! {
    /// Decode and auxiliary heads of segmentors, selected by `model.decode_head.type` and
    /// `model.auxiliary_head.type`.
    pub struct SegHeadEntry: "decode head" => HeadBuilder;
}

/// The head of a `decode_head` / `auxiliary_head` node with its shared settings. An unknown
/// `type` names the file, the key and the nearest registered heads.
pub fn build_head(
    node: &ConfigNode<'_>,
    device: &Device,
) -> Result<(DecodeHead, HeadCfg), BuildError> {
    let entry = lookup::<SegHeadEntry>(node)?;
    let cfg = HeadCfg::from_node(node, entry.build.keys)?;
    let head = (entry.build.build)(&cfg, node, device)?;
    Ok((head, cfg))
}

fn build_uper(
    cfg: &HeadCfg,
    node: &ConfigNode<'_>,
    device: &Device,
) -> Result<DecodeHead, BuildError> {
    UPerHead::from_cfg(cfg, node, device).map(DecodeHead::UPer)
}

fn build_fcn(
    cfg: &HeadCfg,
    node: &ConfigNode<'_>,
    device: &Device,
) -> Result<DecodeHead, BuildError> {
    FCNHead::from_cfg(cfg, node, device).map(DecodeHead::Fcn)
}

inventory::submit! {
    SegHeadEntry::new("UPerHead", HeadBuilder { keys: &["pool_scales"], build: build_uper })
}
inventory::submit! {
    SegHeadEntry::new(
        "FCNHead",
        HeadBuilder { keys: &["num_convs", "concat_input", "kernel_size"], build: build_fcn },
    )
}
