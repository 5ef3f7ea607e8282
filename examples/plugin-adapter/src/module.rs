//! The adapter module, composed from `mona-core` layers as a [`PluginAdapter`].
//!
//! Layout (and so the state-dict keys under `my_module_1.`):
//! - `norms.0`: LayerNorm(C), weight 1, bias 0;
//! - `linears.0`: `down`, C → r with bias, trunc-normal std 0.02 (as every official Linear);
//! - `linears.1`: `up`, r → C with bias, zero-initialised so the adapter starts as identity;
//! - `params.0`: the per-channel scale `s`, `C` values set to `scale`.

use burn::tensor::{Device, Tensor};

use mona_core::methods::{AdapterModule, PluginAdapter};
use mona_core::nn::{LayerNorm, Linear, gelu, init};

/// Parameters of one adapter with `dim` channels and bottleneck `rank`:
/// norm 2C + down (rC + r) + up (rC + C) + scale C = (2r + 4)·C + r.
pub fn scaled_lowrank_params(dim: usize, rank: usize) -> usize {
    (2 * rank + 4) * dim + rank
}

/// A fresh adapter for a block with `dim` channels.
pub fn scaled_lowrank_adapter(
    dim: usize,
    rank: usize,
    scale: f64,
    device: &Device,
) -> AdapterModule {
    let down = Linear::trunc_normal(dim, rank, true, device);
    let up = Linear {
        weight: init::constant([dim, rank], 0.0, device),
        bias: Some(init::constant([dim], 0.0, device)),
    };
    AdapterModule::Plugin(PluginAdapter::new(
        vec![down, up],
        vec![LayerNorm::new(dim, device)],
        Vec::new(),
        vec![init::constant([dim], scale, device)],
        forward,
    ))
}

/// `x + s ⊙ up(GELU(down(LN(x))))` on `B×N×C` tokens.
fn forward(m: &PluginAdapter, x: Tensor<3>, _hw: (usize, usize), _training: bool) -> Tensor<3> {
    let (Some(norm), Some(down), Some(up), Some(scale)) = (
        m.norms.first(),
        m.linears.first(),
        m.linears.get(1),
        m.params.first(),
    ) else {
        // Only `scaled_lowrank_adapter` builds these modules, so the layout is always complete;
        // a module loaded from elsewhere without it acts as the identity rather than panicking.
        tracing::warn!("scaled_lowrank: adapter module is incomplete; acting as identity");
        return x;
    };
    let c = x.dims()[2];
    let h = gelu(down.forward(norm.forward(x.clone())));
    x + up.forward(h) * scale.val().reshape([1, 1, c])
}
