//! Detection necks chosen by name: the registry, the neck type a detector holds, and the
//! trait a plugin implements to add a neck without touching this crate.
//!
//! `model.neck.type` is looked up in [`DetNeckEntry`]. The built-in `FPN` is a variant of
//! [`Neck`]; a plugin neck is an ordinary `#[derive(Module)]` struct implementing
//! [`DetNeckModule`], held type-erased in [`Neck::Plugin`] (burn's `Module` is not
//! object-safe; see `mona_core::dyn_module`), with its own field names as parameter keys.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Tensor};

use mona_core::config::ConfigNode;
use mona_core::dyn_module::{DynModule, UnsupportedRank};
use mona_core::registry::{BuildError, lookup};

use crate::fpn::{Fpn, FpnConfig};

/// A neck defined outside this crate.
pub trait DetNeckModule: Module + ModuleDisplay + Sync + 'static {
    /// The pyramid levels, finest first, from the backbone's feature maps.
    fn forward(&self, feats: &[Tensor<4>]) -> Vec<Tensor<4>>;
}

/// The functions a detector calls on a plugin neck, filled in for its concrete type.
#[derive(Clone, Copy, Debug)]
pub struct NeckOps {
    forward: fn(&PluginNeck, &[Tensor<4>]) -> Vec<Tensor<4>>,
}

/// A plugin's neck, its type erased.
pub type PluginNeck = DynModule<NeckOps>;

/// A neck of any registered type. Variant names never appear in parameter keys.
#[derive(Module, Debug)]
pub enum Neck {
    Fpn(Fpn),
    Plugin(PluginNeck),
}

impl Neck {
    /// Wraps a plugin's neck. Fails only for a parameter of rank above
    /// `mona_core::dyn_module::MAX_RANK`.
    pub fn plugin<N: DetNeckModule>(neck: N) -> Result<Self, UnsupportedRank> {
        let ops = NeckOps {
            forward: |m, feats| match m.get::<N>() {
                Some(n) => n.forward(feats),
                // The ops are built here together with the module they are given.
                None => unreachable!("a NeckOps travels with its own neck type"),
            },
        };
        DynModule::new(neck, ops).map(Neck::Plugin)
    }

    pub fn forward(&self, feats: &[Tensor<4>]) -> Vec<Tensor<4>> {
        match self {
            Neck::Fpn(n) => n.forward(feats),
            Neck::Plugin(n) => (n.ops().forward)(n, feats),
        }
    }
}

/// What the heads after a neck need to know of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeckOutputs {
    /// Channels of every output level.
    pub channels: usize,
    /// How many levels it outputs.
    pub levels: usize,
}

/// Builds a neck for a backbone whose outputs have `in_channels` channels.
pub type NeckBuilder =
    fn(&ConfigNode<'_>, &[usize], &Device) -> Result<(Neck, NeckOutputs), BuildError>;

mona_core::declare_registry! {
    /// Necks of detectors, selected by `model.neck.type`.
    pub struct DetNeckEntry: "neck" => NeckBuilder;
}

/// The neck of a `neck` node for a backbone with outputs of `in_channels` channels; an
/// unknown `type` names the file, the key and the nearest registered necks.
pub fn build_neck(
    node: &ConfigNode<'_>,
    in_channels: &[usize],
    device: &Device,
) -> Result<(Neck, NeckOutputs), BuildError> {
    let entry = lookup::<DetNeckEntry>(node)?;
    (entry.build)(node, in_channels, device)
}

fn build_fpn(
    node: &ConfigNode<'_>,
    in_channels: &[usize],
    device: &Device,
) -> Result<(Neck, NeckOutputs), BuildError> {
    let cfg: FpnConfig = node.extract()?;
    if cfg.in_channels != in_channels {
        return Err(BuildError::invalid(
            node,
            Some("in_channels"),
            format!(
                "{:?}, but the backbone outputs {in_channels:?} channels",
                cfg.in_channels
            ),
        ));
    }
    let fpn = Fpn::new(&cfg, device).map_err(|e| BuildError::invalid(node, None, e.to_string()))?;
    let outputs = NeckOutputs {
        channels: cfg.out_channels,
        levels: cfg.num_outs,
    };
    Ok((Neck::Fpn(fpn), outputs))
}

inventory::submit! { DetNeckEntry::new("FPN", build_fpn) }
