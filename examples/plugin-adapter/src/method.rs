//! The `scaled_lowrank` method: its config, its freezing rule, and its registration.

use burn::tensor::Device;
use serde::Deserialize;

use mona_core::config::{ConfigError, ConfigNode};
use mona_core::dyn_module::UnsupportedRank;
use mona_core::methods::{
    AdapterModule, AdapterSlot, BlockAdapters, MethodEntry, Placement, TuningMethod,
};

use crate::module::ScaledLowRank;

/// The registered name (`[model.backbone.method] type = "scaled_lowrank"`).
pub const NAME: &str = "scaled_lowrank";

/// Where on the residual stream of a block the adapter acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    /// Right after the attention residual add (where Mona's first module sits).
    AfterAttn,
    /// Right after the MLP residual add (where Mona's second module sits).
    #[default]
    AfterMlp,
}

impl Position {
    fn placement(self) -> Placement {
        match self {
            Position::AfterAttn => Placement::AfterAttnResidual,
            Position::AfterMlp => Placement::AfterMlpResidual,
        }
    }
}

fn default_rank() -> usize {
    8
}

fn default_scale() -> f64 {
    0.1
}

/// One low-rank adapter per block; only the adapter's `my_module_1.*` parameters train.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaledLowRankMethod {
    #[serde(rename = "type")]
    _type: String,
    /// Bottleneck width r of `down` (C → r) and `up` (r → C).
    #[serde(default = "default_rank")]
    pub rank: usize,
    /// Initial value of the learnable per-channel output scale.
    #[serde(default = "default_scale")]
    pub scale: f64,
    #[serde(default)]
    pub position: Position,
}

impl TuningMethod for ScaledLowRankMethod {
    fn name(&self) -> &'static str {
        NAME
    }

    fn official_class(&self) -> &'static str {
        // No official backbone class: this method only exists as the plugin example.
        "ScaledLowRank (plugin example)"
    }

    fn block_adapters(
        &self,
        dim: usize,
        device: &Device,
    ) -> Result<BlockAdapters, UnsupportedRank> {
        let adapter = ScaledLowRank::new(dim, self.rank, self.scale, device);
        Ok(BlockAdapters {
            slot1: Some(AdapterSlot {
                placement: self.position.placement(),
                module: AdapterModule::plugin(adapter)?,
            }),
            slot2: None,
        })
    }

    fn trainable(&self, key: &str) -> bool {
        key.contains("my_module")
    }
}

/// Reads and checks the method table; bad values are errors naming the file and the key.
fn build(node: &ConfigNode<'_>) -> Result<Box<dyn TuningMethod>, ConfigError> {
    let method: ScaledLowRankMethod = node.extract()?;
    let field_error = |field: &str, message: String| {
        let key = match node.key() {
            "" => field.to_string(),
            parent => format!("{parent}.{field}"),
        };
        ConfigError::invalid(node.file(), key, message)
    };
    if method.rank == 0 {
        return Err(field_error("rank", "must be at least 1".into()));
    }
    if !method.scale.is_finite() {
        return Err(field_error(
            "scale",
            format!("must be a finite number, got {}", method.scale),
        ));
    }
    Ok(Box::new(method))
}

inventory::submit! { MethodEntry::new(NAME, build) }

/// Lives next to the registration so that referencing it keeps the registration's object
/// code (see [`crate::link`]).
#[inline(never)]
pub(crate) fn link() {
    std::hint::black_box(build as fn(&ConfigNode<'_>) -> _);
}
