//! Tuning methods: Mona and every baseline of the paper, each registered by name.
//!
//! A method decides two things about a Swin backbone:
//! - which modules each block gains ([`BlockAdapters`]: up to two adapter slots named
//!   `my_module_1` / `my_module_2`, each with a [`Placement`], and optionally LoRA on `attn.qkv`);
//! - which backbone parameters train ([`TuningMethod::trainable`], applied to the official
//!   state-dict key, e.g. `layers.0.blocks.1.my_module_2.gamma`).
//!
//! Methods are chosen by `model.backbone.method.type` and built from that config node through
//! the [`MethodEntry`] registry, so a plugin crate registers a new method with
//! `inventory::submit!` and its own [`Adapter`] module type, without touching this crate.

mod adapter;
mod builtin;
mod lora;
mod mona;
mod plugin;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::{ConfigError, ConfigNode};
use crate::dyn_module::UnsupportedRank;

pub use adapter::BottleneckAdapter;
pub use builtin::{
    AdaptFormerMethod, AdapterMethod, BitFitMethod, FixedMethod, FullMethod, LoraMethod,
    MonaMethod, NormTuningMethod, Partial1Method,
};
pub use lora::{LoraLinear, LoraSpec};
pub use mona::{Mona, MonaOp};
pub use plugin::{Adapter, AdapterOps, PluginAdapter};

/// Where an adapter slot acts inside a Swin block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the residual stream right after the attention residual add (Mona #1).
    AfterAttnResidual,
    /// On the attention branch output, before DropPath and the residual add (Adapter #1).
    AttnBranch,
    /// On the MLP branch output, before DropPath and the residual add (Adapter #2).
    MlpBranch,
    /// Parallel to the MLP: `x = id + DropPath(MLP(LN(id))) + A(id)` (AdaptFormer).
    ParallelMlp,
    /// On the residual stream right after the MLP residual add (Mona #2).
    AfterMlpResidual,
}

/// The module of one adapter slot.
///
/// Variants differ in size (Mona holds four convs); a block holds at most two, built once, so
/// the padding costs nothing worth a `Box` (which the module derive would also have to see
/// through).
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum AdapterModule {
    Mona(Mona),
    Bottleneck(BottleneckAdapter),
    Plugin(PluginAdapter),
}

impl AdapterModule {
    /// `x` is `B×N×C` with `N = H·W` (unpadded stage resolution `hw`).
    pub fn forward(&self, x: Tensor<3>, hw: (usize, usize), training: bool) -> Tensor<3> {
        match self {
            AdapterModule::Mona(m) => m.forward(x, hw, training),
            AdapterModule::Bottleneck(m) => m.forward(x, training),
            AdapterModule::Plugin(m) => plugin::forward(m, x, hw, training),
        }
    }
}

/// One adapter slot: the module and where it acts.
pub struct AdapterSlot {
    pub placement: Placement,
    pub module: AdapterModule,
}

/// What a method adds to one block of `dim` channels.
#[derive(Default)]
pub struct BlockAdapters {
    /// Becomes `my_module_1`.
    pub slot1: Option<AdapterSlot>,
    /// Becomes `my_module_2`.
    pub slot2: Option<AdapterSlot>,
}

/// A tuning method: the added modules and the freezing rule.
pub trait TuningMethod: Send + Sync + std::fmt::Debug {
    /// The registered name (`mona`, `lora`, ...).
    fn name(&self) -> &'static str;
    /// The official backbone class this method corresponds to, for logs and docs.
    fn official_class(&self) -> &'static str;
    /// Modules added to a block with `dim` channels.
    ///
    /// Fails only when a plugin's adapter cannot be erased ([`AdapterModule::plugin`]).
    fn block_adapters(
        &self,
        dim: usize,
        device: &Device,
    ) -> Result<BlockAdapters, UnsupportedRank> {
        let _ = (dim, device);
        Ok(BlockAdapters::default())
    }
    /// LoRA on `attn.qkv`, if the method uses it.
    fn qkv_lora(&self) -> Option<LoraSpec> {
        None
    }
    /// Whether the backbone parameter with this official key (no `backbone.` prefix) trains.
    fn trainable(&self, key: &str) -> bool;
}

crate::declare_registry! {
    /// Tuning methods, selected by `model.backbone.method.type`.
    pub struct MethodEntry: "tuning method" =>
        fn(&ConfigNode<'_>) -> Result<Box<dyn TuningMethod>, ConfigError>;
}

/// Builds the method named by `node` (a `method` table with a `type`).
pub fn build_method(
    node: &ConfigNode<'_>,
) -> Result<Box<dyn TuningMethod>, crate::registry::RegistryError> {
    let entry = crate::registry::lookup::<MethodEntry>(node)?;
    Ok((entry.build)(node)?)
}
