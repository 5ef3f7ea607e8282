//! The nine methods of the paper's comparison, with the official freezing rules.

use burn::tensor::Device;
use serde::Deserialize;

use super::{
    AdapterModule, AdapterSlot, BlockAdapters, BottleneckAdapter, LoraSpec, MethodEntry, Mona,
    Placement, TuningMethod,
};
use crate::config::{ConfigError, ConfigNode};
use crate::dyn_module::UnsupportedRank;

fn default_bottleneck() -> usize {
    64
}
fn default_dropout() -> f64 {
    0.1
}

/// `SwinTransformer_mona`: two Mona modules per block; only `my_module*` trains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonaMethod {
    #[serde(rename = "type")]
    _type: String,
    /// Bottleneck width; hard-coded to 64 in the official code.
    #[serde(default = "default_bottleneck")]
    pub bottleneck: usize,
    /// Dropout after GELU; hard-coded to 0.1 in the official code.
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

impl TuningMethod for MonaMethod {
    fn name(&self) -> &'static str {
        "mona"
    }
    fn official_class(&self) -> &'static str {
        "SwinTransformer_mona"
    }
    fn block_adapters(
        &self,
        dim: usize,
        device: &Device,
    ) -> Result<BlockAdapters, UnsupportedRank> {
        let mona = || AdapterModule::Mona(Mona::new(dim, self.bottleneck, self.dropout, device));
        Ok(BlockAdapters {
            slot1: Some(AdapterSlot {
                placement: Placement::AfterAttnResidual,
                module: mona(),
            }),
            slot2: Some(AdapterSlot {
                placement: Placement::AfterMlpResidual,
                module: mona(),
            }),
        })
    }
    fn trainable(&self, key: &str) -> bool {
        key.contains("my_module")
    }
}

/// `SwinTransformer_adapter`: a bottleneck adapter with an inner skip on the attention output
/// and on the MLP output, both before their residual adds.
///
/// The official constructor call `Adapter(dim, 2)` raises a TypeError (the class takes one
/// argument), so the official backbone cannot be built; this is the evident intent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterMethod {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "default_bottleneck")]
    pub bottleneck: usize,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
}

impl TuningMethod for AdapterMethod {
    fn name(&self) -> &'static str {
        "adapter"
    }
    fn official_class(&self) -> &'static str {
        "SwinTransformer_adapter"
    }
    fn block_adapters(
        &self,
        dim: usize,
        device: &Device,
    ) -> Result<BlockAdapters, UnsupportedRank> {
        let adapter = || {
            AdapterModule::Bottleneck(BottleneckAdapter::new(
                dim,
                self.bottleneck,
                self.dropout,
                1.0,
                true,
                device,
            ))
        };
        Ok(BlockAdapters {
            slot1: Some(AdapterSlot {
                placement: Placement::AttnBranch,
                module: adapter(),
            }),
            slot2: Some(AdapterSlot {
                placement: Placement::MlpBranch,
                module: adapter(),
            }),
        })
    }
    fn trainable(&self, key: &str) -> bool {
        key.contains("my_module")
    }
}

fn default_adaptformer_scale() -> f64 {
    0.1
}

/// `SwinTransformer_adaptformer`: one scaled bottleneck parallel to the MLP (no inner skip,
/// input not layer-normed). Same constructor bug as Adapter; evident intent implemented.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptFormerMethod {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "default_bottleneck")]
    pub bottleneck: usize,
    #[serde(default = "default_dropout")]
    pub dropout: f64,
    /// Fixed output scale (not learnable), 0.1 officially.
    #[serde(default = "default_adaptformer_scale")]
    pub scale: f64,
}

impl TuningMethod for AdaptFormerMethod {
    fn name(&self) -> &'static str {
        "adaptformer"
    }
    fn official_class(&self) -> &'static str {
        "SwinTransformer_adaptformer"
    }
    fn block_adapters(
        &self,
        dim: usize,
        device: &Device,
    ) -> Result<BlockAdapters, UnsupportedRank> {
        Ok(BlockAdapters {
            slot1: Some(AdapterSlot {
                placement: Placement::ParallelMlp,
                module: AdapterModule::Bottleneck(BottleneckAdapter::new(
                    dim,
                    self.bottleneck,
                    self.dropout,
                    self.scale,
                    false,
                    device,
                )),
            }),
            slot2: None,
        })
    }
    fn trainable(&self, key: &str) -> bool {
        key.contains("my_module")
    }
}

fn default_lora_r() -> usize {
    64
}
fn default_lora_alpha() -> f64 {
    1.0
}
fn default_enable_lora() -> [bool; 3] {
    [true, false, true]
}

/// `SwinTransformer_lora`: loralib `MergedLinear` on `attn.qkv` (r 64, alpha 1, q and v);
/// only `lora_*` trains. The COCO / CLS-VOC configs name it `SwinTransformer_lora_64`, which
/// is not registered officially; both mean this method.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraMethod {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "default_lora_r")]
    pub r: usize,
    #[serde(default = "default_lora_alpha")]
    pub alpha: f64,
    /// loralib's `lora_dropout`; 0 officially. Only 0 is supported (the fixtures and all
    /// official configs use it), any other value is rejected when the method is built.
    #[serde(default)]
    pub dropout: f64,
    #[serde(default = "default_enable_lora")]
    pub enable_lora: [bool; 3],
}

impl TuningMethod for LoraMethod {
    fn name(&self) -> &'static str {
        "lora"
    }
    fn official_class(&self) -> &'static str {
        "SwinTransformer_lora"
    }
    fn qkv_lora(&self) -> Option<LoraSpec> {
        Some(LoraSpec {
            r: self.r,
            alpha: self.alpha,
            enable: self.enable_lora,
        })
    }
    fn trainable(&self, key: &str) -> bool {
        key.contains("lora_")
    }
}

macro_rules! rule_method {
    ($(#[$meta:meta])* $name:ident, $reg:literal, $class:literal, |$key:ident| $rule:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(rename = "type", default)]
            _type: String,
        }
        impl TuningMethod for $name {
            fn name(&self) -> &'static str {
                $reg
            }
            fn official_class(&self) -> &'static str {
                $class
            }
            fn trainable(&self, $key: &str) -> bool {
                $rule
            }
        }
    };
}

rule_method!(
    /// `SwinTransformer_bitfit`: every name containing `bias`, which includes
    /// `relative_position_bias_table`.
    BitFitMethod, "bitfit", "SwinTransformer_bitfit", |key| key.contains("bias")
);
rule_method!(
    /// `SwinTransformer_norm_tuning`: every name containing `norm` (all LayerNorms,
    /// including `patch_embed.norm`, `downsample.norm` and the output norms).
    NormTuningMethod, "norm_tuning", "SwinTransformer_norm_tuning", |key| key.contains("norm")
);
rule_method!(
    /// `SwinTransformer_partial_1`: the last block of stage 4, by the official substring
    /// `layers.3.blocks.1`; the output norm `norm3` stays frozen.
    Partial1Method, "partial_1", "SwinTransformer_partial_1", |key| key.contains("layers.3.blocks.1")
);
rule_method!(
    /// `SwinTransformer_fixed`: the rule `my_module` matches nothing, so the backbone is frozen.
    FixedMethod, "fixed", "SwinTransformer_fixed", |key| key.contains("my_module")
);
rule_method!(
    /// `SwinTransformer`: full fine-tuning.
    FullMethod, "full", "SwinTransformer", |_key| true
);

fn extract<T>(node: &ConfigNode<'_>) -> Result<T, ConfigError>
where
    T: serde::de::DeserializeOwned,
{
    node.extract::<T>()
}

fn boxed<T: TuningMethod + serde::de::DeserializeOwned + 'static>(
    node: &ConfigNode<'_>,
) -> Result<Box<dyn TuningMethod>, ConfigError> {
    Ok(Box::new(extract::<T>(node)?))
}

fn build_lora(node: &ConfigNode<'_>) -> Result<Box<dyn TuningMethod>, ConfigError> {
    let m: LoraMethod = extract(node)?;
    if m.dropout != 0.0 {
        return Err(ConfigError::Invalid {
            file: node.file().to_path_buf(),
            key: format!("{}.dropout", node.key()),
            message: format!(
                "lora dropout {} is not supported (the official configs use 0)",
                m.dropout
            ),
        });
    }
    if m.r == 0 || !m.enable_lora.iter().any(|e| *e) {
        return Err(ConfigError::Invalid {
            file: node.file().to_path_buf(),
            key: node.key().to_string(),
            message: "lora needs r > 0 and at least one enabled projection".into(),
        });
    }
    Ok(Box::new(m))
}

inventory::submit! { MethodEntry::new("mona", boxed::<MonaMethod>) }
inventory::submit! { MethodEntry::new("adapter", boxed::<AdapterMethod>) }
inventory::submit! { MethodEntry::new("adaptformer", boxed::<AdaptFormerMethod>) }
inventory::submit! { MethodEntry::new("lora", build_lora) }
inventory::submit! { MethodEntry::new("bitfit", boxed::<BitFitMethod>) }
inventory::submit! { MethodEntry::new("norm_tuning", boxed::<NormTuningMethod>) }
inventory::submit! { MethodEntry::new("partial_1", boxed::<Partial1Method>) }
inventory::submit! { MethodEntry::new("fixed", boxed::<FixedMethod>) }
inventory::submit! { MethodEntry::new("full", boxed::<FullMethod>) }
