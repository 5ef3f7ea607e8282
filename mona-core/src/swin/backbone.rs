use std::sync::Arc;

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::config::SwinConfig;
use super::layer::BasicLayer;
use super::patch::PatchEmbed;
use crate::methods::TuningMethod;
use crate::nn::{Dropout, LayerNorm};

/// Why a backbone could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SwinBuildError {
    #[error("invalid Swin configuration: {0}")]
    Config(String),
    #[error("invalid Swin configuration: {0}")]
    Arch(#[from] super::config::SwinConfigError),
    /// A tuning method's adapter could not be placed in a block.
    #[error(transparent)]
    Adapter(#[from] crate::dyn_module::UnsupportedRank),
}

/// The det-style Swin Transformer with a tuning method.
///
/// `forward` returns the normalised feature maps `(B, C_i, H_i, W_i)` of the stages listed in
/// `out_indices`. Freezing follows the method's official rule, see [`Self::trainable`].
#[derive(Module, Debug)]
pub struct SwinTransformer {
    pub patch_embed: PatchEmbed,
    pub pos_drop: Dropout,
    pub layers: Vec<BasicLayer>,
    pub norm0: Option<LayerNorm>,
    pub norm1: Option<LayerNorm>,
    pub norm2: Option<LayerNorm>,
    pub norm3: Option<LayerNorm>,
    #[module(skip)]
    out_indices: Vec<usize>,
    #[module(skip)]
    config: SwinConfig,
    #[module(skip)]
    method: Arc<dyn TuningMethod>,
}

impl SwinTransformer {
    /// Builds the backbone with fresh (official-init) parameters.
    pub fn new(
        config: &SwinConfig,
        method: Arc<dyn TuningMethod>,
        device: &Device,
    ) -> Result<Self, SwinBuildError> {
        let config = config.clone().resolved()?;
        let depths = config.depths();
        let heads = config.num_heads();
        if depths.len() > 4 {
            return Err(SwinBuildError::Config(format!(
                "depths: {} stages; the Swin backbone has at most 4 (output norms norm0..norm3)",
                depths.len()
            )));
        }
        let total: usize = depths.iter().sum();
        // dpr = linspace(0, drop_path_rate, Σdepths)
        let dpr: Vec<f64> = (0..total)
            .map(|k| {
                if total > 1 {
                    config.drop_path_rate * k as f64 / (total - 1) as f64
                } else {
                    0.0
                }
            })
            .collect();
        let mut start = 0;
        let layers = depths
            .iter()
            .enumerate()
            .map(|(i, &depth)| {
                let layer = BasicLayer::new(
                    config.stage_channels(i),
                    depth,
                    heads[i],
                    config.window_size,
                    config.mlp_ratio,
                    config.qkv_bias,
                    config.qk_scale,
                    config.drop_rate,
                    config.attn_drop_rate,
                    &dpr[start..start + depth],
                    i + 1 < depths.len(),
                    method.as_ref(),
                    device,
                );
                start += depth;
                layer
            })
            .collect::<Result<_, _>>()?;
        let norm = |i: usize| {
            config
                .out_indices
                .contains(&i)
                .then(|| LayerNorm::new(config.stage_channels(i), device))
        };
        Ok(Self {
            patch_embed: PatchEmbed::new(
                config.in_chans,
                config.embed_dim(),
                config.patch_size,
                config.patch_norm,
                device,
            ),
            pos_drop: Dropout::new(config.drop_rate),
            layers,
            norm0: norm(0),
            norm1: norm(1),
            norm2: norm(2),
            norm3: norm(3),
            out_indices: config.out_indices.clone(),
            config,
            method,
        })
    }

    pub fn config(&self) -> &SwinConfig {
        &self.config
    }

    pub fn method(&self) -> &dyn TuningMethod {
        self.method.as_ref()
    }

    pub fn out_indices(&self) -> &[usize] {
        &self.out_indices
    }

    /// Channels of each output, in the order [`Self::forward`] returns them: stage order
    /// (as the official `for i in range(num_layers): if i in out_indices`), whatever the
    /// order of `out_indices` in the config.
    pub fn out_channels(&self) -> Vec<usize> {
        (0..self.layers.len())
            .filter(|i| self.out_indices.contains(i))
            .map(|i| self.config.stage_channels(i))
            .collect()
    }

    /// The official rule for a backbone key (no `backbone.` prefix): the method's rule
    /// (applied in `init_weights`), as counted by the official `tools/train.py`.
    pub fn trainable(&self, key: &str) -> bool {
        self.method.trainable(key)
    }

    /// The rule during training: the method's rule, minus what `frozen_stages` freezes
    /// (`_freeze_stages` runs again in `train()`, after `init_weights`): `patch_embed` for
    /// `frozen_stages ≥ 0`, and stages `0..frozen_stages-1` for `frozen_stages ≥ 2`.
    pub fn trainable_in_training(&self, key: &str) -> bool {
        if !self.trainable(key) {
            return false;
        }
        let fs = self.config.frozen_stages;
        if fs >= 0 && key.starts_with("patch_embed.") {
            return false;
        }
        if fs >= 2 {
            for i in 0..(fs - 1) as usize {
                if key.starts_with(&format!("layers.{i}.")) {
                    return false;
                }
            }
        }
        true
    }

    /// Folds every LoRA update into its `attn.qkv.weight` (loralib's eval-mode merge) for
    /// inference; outputs are unchanged up to float rounding. No-op without LoRA.
    pub fn merge_lora(mut self) -> Self {
        for layer in &mut self.layers {
            for block in &mut layer.blocks {
                block.attn.qkv = block.attn.qkv.clone().merged();
            }
        }
        self
    }

    /// Undoes [`Self::merge_lora`] (loralib's train-mode unmerge).
    pub fn unmerge_lora(mut self) -> Self {
        for layer in &mut self.layers {
            for block in &mut layer.blocks {
                block.attn.qkv = block.attn.qkv.clone().unmerged();
            }
        }
        self
    }

    fn out_norm(&self, i: usize) -> Option<&LayerNorm> {
        match i {
            0 => self.norm0.as_ref(),
            1 => self.norm1.as_ref(),
            2 => self.norm2.as_ref(),
            3 => self.norm3.as_ref(),
            _ => None,
        }
    }

    /// `x`: normalised images `(B, in_chans, H, W)`. `training` enables dropout and DropPath.
    pub fn forward(&self, x: Tensor<4>, training: bool) -> Vec<Tensor<4>> {
        let (tokens, mut hw) = self.patch_embed.forward(x);
        let mut x = self.pos_drop.forward(tokens, training);
        let mut outs = Vec::with_capacity(self.out_indices.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let stage = layer.forward(x, hw, training);
            if self.out_indices.contains(&i)
                && let Some(norm) = self.out_norm(i)
            {
                let y = norm.forward(stage.x_out);
                let [b, _, c] = y.dims();
                let (h, w) = stage.hw_out;
                outs.push(y.reshape([b, h, w, c]).permute([0, 3, 1, 2]));
            }
            x = stage.x_next;
            hw = stage.hw_next;
        }
        outs
    }
}
