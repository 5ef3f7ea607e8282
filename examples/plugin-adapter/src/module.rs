//! The adapter module: an ordinary `#[derive(Module)]` struct with named sub-modules.
//!
//! Its field names are its state-dict keys under `my_module_1.`:
//! - `norm`: LayerNorm(C), weight 1, bias 0;
//! - `down`: C → r with bias, trunc-normal std 0.02 (as every official Linear);
//! - `up`: r → C with bias, zero-initialised so the adapter starts as the identity;
//! - `scale`: the per-channel scale `s`, `C` values set to `scale`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use mona_core::methods::Adapter;
use mona_core::nn::{LayerNorm, Linear, gelu, init};

/// `y = x + s ⊙ up(GELU(down(LN(x))))` on the residual stream of a Swin block.
#[derive(Module, Debug)]
pub struct ScaledLowRank {
    pub norm: LayerNorm,
    pub down: Linear,
    pub up: Linear,
    pub scale: Param<Tensor<1>>,
}

/// Parameters of one adapter with `dim` channels and bottleneck `rank`:
/// norm 2C + down (rC + r) + up (rC + C) + scale C = (2r + 4)·C + r.
pub fn scaled_lowrank_params(dim: usize, rank: usize) -> usize {
    (2 * rank + 4) * dim + rank
}

impl ScaledLowRank {
    /// A fresh adapter for a block with `dim` channels.
    pub fn new(dim: usize, rank: usize, scale: f64, device: &Device) -> Self {
        Self {
            norm: LayerNorm::new(dim, device),
            down: Linear::trunc_normal(dim, rank, true, device),
            up: Linear {
                weight: init::constant([dim, rank], 0.0, device),
                bias: Some(init::constant([dim], 0.0, device)),
            },
            scale: init::constant([dim], scale, device),
        }
    }
}

impl Adapter for ScaledLowRank {
    fn forward(&self, x: Tensor<3>, _hw: (usize, usize), _training: bool) -> Tensor<3> {
        let c = x.dims()[2];
        let h = gelu(self.down.forward(self.norm.forward(x.clone())));
        x + self.up.forward(h) * self.scale.val().reshape([1, 1, c])
    }
}
