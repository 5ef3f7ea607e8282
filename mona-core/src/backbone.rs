//! The backbone extension point.

use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::config::ConfigNode;
use crate::methods::{TuningMethod, build_method};
use crate::registry::BuildError;
use crate::swin::{SwinConfig, SwinTransformer};

/// A backbone of any registered kind. Enum variant names never appear in parameter keys.
#[derive(Module, Debug)]
pub enum Backbone {
    Swin(SwinTransformer),
}

impl Backbone {
    /// Multi-scale features `(B, C_i, H_i, W_i)` of the configured output stages.
    pub fn forward(&self, x: Tensor<4>, training: bool) -> Vec<Tensor<4>> {
        match self {
            Backbone::Swin(m) => m.forward(x, training),
        }
    }

    pub fn out_channels(&self) -> Vec<usize> {
        match self {
            Backbone::Swin(m) => m.out_channels(),
        }
    }

    pub fn method(&self) -> &dyn TuningMethod {
        match self {
            Backbone::Swin(m) => m.method(),
        }
    }

    /// The method's official rule for a backbone key (as counted by the official tools).
    pub fn trainable(&self, key: &str) -> bool {
        match self {
            Backbone::Swin(m) => m.trainable(key),
        }
    }

    /// Folds every LoRA update into the weight it adapts (loralib's eval-mode merge): the
    /// backbone then computes the same outputs, up to float rounding, from its plain weights
    /// alone. A no-op for the other methods.
    pub fn merge_lora(self) -> Self {
        match self {
            Backbone::Swin(m) => Backbone::Swin(m.merge_lora()),
        }
    }

    /// The rule during training (adds `frozen_stages`).
    pub fn trainable_in_training(&self, key: &str) -> bool {
        match self {
            Backbone::Swin(m) => m.trainable_in_training(key),
        }
    }
}

crate::declare_registry! {
    /// Backbones, selected by `model.backbone.type`.
    pub struct BackboneEntry: "backbone" =>
        fn(&ConfigNode<'_>, &Device) -> Result<Backbone, BuildError>;
}

/// Builds the backbone described by `node` (with its `method` sub-table).
pub fn build_backbone(node: &ConfigNode<'_>, device: &Device) -> Result<Backbone, BuildError> {
    let entry = crate::registry::lookup::<BackboneEntry>(node)?;
    (entry.build)(node, device)
}

/// The method table of a backbone node; `full` when absent (plain `SwinTransformer`).
pub fn backbone_method(node: &ConfigNode<'_>) -> Result<Arc<dyn TuningMethod>, BuildError> {
    match node.get("method") {
        Some(method) => Ok(Arc::from(build_method(&method)?)),
        None => Ok(Arc::new(crate::methods::FullMethod::default())),
    }
}

fn build_swin(node: &ConfigNode<'_>, device: &Device) -> Result<Backbone, BuildError> {
    let config: SwinConfig = node.extract()?;
    let method = backbone_method(node)?;
    SwinTransformer::new(&config, method, device)
        .map(Backbone::Swin)
        .map_err(|e| BuildError::invalid(node, None, e.to_string()))
}

inventory::submit! { BackboneEntry::new("SwinTransformer", build_swin) }
