use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::init;

/// `nn.LayerNorm` over the last dimension, eps 1e-5, with PyTorch's `weight`/`bias` names.
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
}

impl LayerNorm {
    pub const EPS: f64 = 1e-5;

    /// weight = 1, bias = 0 (PyTorch default and the official `init_weights`).
    pub fn new(dim: usize, device: &Device) -> Self {
        Self {
            weight: init::constant([dim], 1.0, device),
            bias: init::constant([dim], 0.0, device),
        }
    }

    /// The fused kernel on the flex device and on cubecl devices (keeps only `x` for the
    /// backward pass), burn's `layer_norm` elsewhere.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        if crate::fused::enabled_with_cube(&x) {
            return crate::fused::fused_layer_norm(
                x,
                self.weight.val(),
                self.bias.val(),
                Self::EPS,
            );
        }
        burn::tensor::module::layer_norm(x, self.weight.val(), Some(self.bias.val()), Self::EPS)
    }
}
