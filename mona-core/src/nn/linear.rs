use burn::module::{Module, Param};
use burn::tensor::{Device, FloatDType, Tensor};

use super::init;

/// `nn.Linear` with PyTorch layout: `weight` is `[out, in]`.
#[derive(Module, Debug)]
pub struct Linear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// The init of the official `init_weights`: weight ~ trunc_normal(0.02), bias = 0.
    pub fn trunc_normal(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Self {
        Self {
            weight: init::trunc_normal([d_out, d_in], 0.02, device),
            bias: bias.then(|| init::constant([d_out], 0.0, device)),
        }
    }

    /// PyTorch's default `nn.Linear` init (kaiming-uniform a=√5, bias U(±1/√in)).
    pub fn torch_default(d_in: usize, d_out: usize, bias: bool, device: &Device) -> Self {
        let bound = init::kaiming_uniform_bound(d_in);
        Self {
            weight: init::uniform([d_out, d_in], bound, device),
            bias: bias.then(|| init::uniform([d_out], bound, device)),
        }
    }

    /// Weight N(0, std), bias 0 (mmcls `normal_init` of classification heads).
    pub fn normal(d_in: usize, d_out: usize, std: f64, device: &Device) -> Self {
        Self {
            weight: init::normal([d_out, d_in], std, device),
            bias: Some(init::constant([d_out], 0.0, device)),
        }
    }

    /// Input features (read from the lazy shape: never draws the initial values).
    pub fn d_in(&self) -> usize {
        self.weight.lazy_shape().dims::<2>()[1]
    }

    /// Output features.
    pub fn d_out(&self) -> usize {
        self.weight.lazy_shape().dims::<2>()[0]
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let (w, b) = (self.weight.val(), self.bias.as_ref().map(|b| b.val()));
        match super::amp::autocast() {
            None => linear(x, w, b),
            Some(dt) => burn::tensor::module::linear(
                x.cast(dt),
                w.transpose().cast(dt),
                b.map(|b| b.cast(dt)),
            )
            .cast(FloatDType::F32),
        }
    }
}

/// `x·Wᵀ + b` in the tensors' own precision, with `weight` `[out, in]` (PyTorch's layout):
/// the fused op where it serves `x` (f32 on flex), burn's `linear` elsewhere.
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    if crate::fused::enabled(&x) {
        return crate::fused::fused_linear(x, weight, bias);
    }
    burn::tensor::module::linear(x, weight.transpose(), bias)
}
