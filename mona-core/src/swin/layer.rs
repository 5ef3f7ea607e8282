use crate::dyn_module::UnsupportedRank;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::block::{BlockArgs, SwinBlock};
use super::patch::PatchMerging;
use super::windows::shifted_window_mask_tensor;
use crate::methods::TuningMethod;

/// One stage (`BasicLayer`): blocks with alternating shifts, then optional patch merging.
#[derive(Module, Debug)]
pub struct BasicLayer {
    pub blocks: Vec<SwinBlock>,
    pub downsample: Option<PatchMerging>,
    window_size: usize,
}

/// What a stage returns: the pre-downsample tokens and grid, and the downsampled ones.
pub struct StageOutput {
    pub x_out: Tensor<3>,
    pub hw_out: (usize, usize),
    pub x_next: Tensor<3>,
    pub hw_next: (usize, usize),
}

impl BasicLayer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dim: usize,
        depth: usize,
        num_heads: usize,
        window_size: usize,
        mlp_ratio: f64,
        qkv_bias: bool,
        qk_scale: Option<f64>,
        drop: f64,
        attn_drop: f64,
        drop_path: &[f64],
        downsample: bool,
        method: &dyn TuningMethod,
        device: &Device,
    ) -> Result<Self, UnsupportedRank> {
        let lora = method.qkv_lora();
        let blocks = (0..depth)
            .map(|j| {
                let args = BlockArgs {
                    dim,
                    num_heads,
                    window_size,
                    shift_size: if j % 2 == 0 { 0 } else { window_size / 2 },
                    mlp_ratio,
                    qkv_bias,
                    qk_scale,
                    drop,
                    attn_drop,
                    drop_path: drop_path[j],
                };
                Ok(SwinBlock::new(
                    &args,
                    method.block_adapters(dim, device)?,
                    lora.as_ref(),
                    device,
                ))
            })
            .collect::<Result<_, UnsupportedRank>>()?;
        Ok(Self {
            blocks,
            downsample: downsample.then(|| PatchMerging::new(dim, device)),
            window_size,
        })
    }

    pub fn forward(&self, x: Tensor<3>, hw: (usize, usize), training: bool) -> StageOutput {
        let (h, w) = hw;
        let ws = self.window_size;
        let (hp, wp) = (h.div_ceil(ws) * ws, w.div_ceil(ws) * ws);
        let shift = ws / 2;
        let mask = (shift > 0 && self.blocks.len() > 1)
            .then(|| shifted_window_mask_tensor(hp, wp, ws, shift, &x.device()));
        let mut x = x;
        for block in &self.blocks {
            x = block.forward(x, hw, mask.clone(), training);
        }
        match &self.downsample {
            Some(down) => StageOutput {
                x_next: down.forward(x.clone(), hw),
                hw_next: (h.div_ceil(2), w.div_ceil(2)),
                x_out: x,
                hw_out: hw,
            },
            None => StageOutput {
                x_next: x.clone(),
                hw_next: hw,
                x_out: x,
                hw_out: hw,
            },
        }
    }
}
