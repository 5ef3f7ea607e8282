use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::nn::{Conv2d, Dropout, LayerNorm, Linear, gelu, init};

/// The multi-cognitive convolution filter of Mona (`MonaOp` in the official code):
/// `Q = (DW3(P) + DW5(P) + DW7(P)) / 3 + P`, then `R = Q + PW1x1(Q)`.
#[derive(Module, Debug)]
pub struct MonaOp {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
    pub conv3: Conv2d,
    pub projector: Conv2d,
}

impl MonaOp {
    /// PyTorch's default Conv2d init: the official `init_weights` never touches these convs.
    pub fn new(channels: usize, device: &Device) -> Self {
        let dw = |k: usize| {
            Conv2d::torch_default(channels, channels, k, 1, k / 2, channels, true, device)
        };
        Self {
            conv1: dw(3),
            conv2: dw(5),
            conv3: dw(7),
            projector: Conv2d::torch_default(channels, channels, 1, 1, 0, 1, true, device),
        }
    }

    pub fn forward(&self, p: Tensor<4>) -> Tensor<4> {
        let q = (self.conv1.forward(p.clone())
            + self.conv2.forward(p.clone())
            + self.conv3.forward(p.clone()))
            / 3.0
            + p;
        q.clone() + self.projector.forward(q)
    }
}

/// The Mona adapter (spec §1): scaled LayerNorm, down-projection, multi-cognitive
/// depthwise filters, GELU, dropout, up-projection, outer residual.
#[derive(Module, Debug)]
pub struct Mona {
    /// Per-channel scale of `LN(x)`, init 1e-6 (a vector, not the paper's scalar s1).
    pub gamma: Param<Tensor<1>>,
    /// Per-channel scale of `x`, init 1 (the paper's s2).
    pub gammax: Param<Tensor<1>>,
    pub project1: Linear,
    pub project2: Linear,
    pub adapter_conv: MonaOp,
    pub norm: LayerNorm,
    pub dropout: Dropout,
}

impl Mona {
    /// `bottleneck` is 64 in the official code (its `factor` argument is ignored).
    pub fn new(dim: usize, bottleneck: usize, dropout: f64, device: &Device) -> Self {
        Self {
            gamma: init::constant([dim], 1e-6, device),
            gammax: init::constant([dim], 1.0, device),
            project1: Linear::trunc_normal(dim, bottleneck, true, device),
            project2: Linear::trunc_normal(bottleneck, dim, true, device),
            adapter_conv: MonaOp::new(bottleneck, device),
            norm: LayerNorm::new(dim, device),
            dropout: Dropout::new(dropout),
        }
    }

    /// `x`: `B×N×C`, tokens row-major over the unpadded stage grid `hw = (H, W)`.
    pub fn forward(&self, x: Tensor<3>, hw: (usize, usize), training: bool) -> Tensor<3> {
        let [b, n, c] = x.dims();
        let (h, w) = hw;
        assert_eq!(n, h * w, "Mona: {n} tokens for a {h}x{w} grid");
        let u = self.norm.forward(x.clone()) * self.gamma.val().reshape([1, 1, c])
            + x.clone() * self.gammax.val().reshape([1, 1, c]);
        let p = self.project1.forward(u);
        let k = p.dims()[2];
        let p = p.reshape([b, h, w, k]).permute([0, 3, 1, 2]);
        let r = self.adapter_conv.forward(p);
        let r = r.permute([0, 2, 3, 1]).reshape([b, n, k]);
        let s = self.dropout.forward(gelu(r), training);
        x + self.project2.forward(s)
    }
}
