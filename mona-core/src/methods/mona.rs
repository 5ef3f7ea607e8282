use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, FloatDType, Tensor, TensorData};

use crate::fused;
use crate::nn::{Conv2d, Dropout, LayerNorm, Linear, amp, init};

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

    /// The filter on `B×C×H×W` maps (the official layout).
    pub fn forward(&self, p: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = p.dims();
        let tokens = p.permute([0, 2, 3, 1]).reshape([b, h * w, c]);
        self.forward_tokens(tokens, (h, w))
            .reshape([b, h, w, c])
            .permute([0, 3, 1, 2])
    }

    /// The filter on `B×N×C` tokens of an `H×W` grid (channels last, as Mona holds them).
    ///
    /// `(DW3(P) + DW5(P) + DW7(P)) / 3 + P` is one depthwise 7×7 convolution whose kernel is
    /// the mean of the three kernels zero-padded to 7×7, plus 1 at the centre tap, and whose
    /// bias is the mean of the three biases: the same linear map, computed in one pass
    /// instead of four. The folded kernel is built in the graph from the three convs' own
    /// parameters, so their gradients, names and checkpoints are unchanged; results differ
    /// from the three separate convs by float rounding only. The 1×1 projector is a matrix
    /// product over channels.
    pub fn forward_tokens(&self, p: Tensor<3>, hw: (usize, usize)) -> Tensor<3> {
        let [b, n, c] = p.dims();
        let (h, w) = hw;
        assert_eq!(n, h * w, "MonaOp: {n} tokens for a {h}x{w} grid");
        let (weight, bias) = self.folded_kernel(c, &p.device());
        let q = if fused::enabled_with_cube(&p) && amp::autocast().is_none() {
            fused::depthwise_nhwc(p.reshape([b, h, w, c]), weight, bias).reshape([b, n, c])
        } else {
            // Without the bias in the convolution, cubecl's autotuner may pick its depthwise
            // kernel (it refuses a bias).
            let x = p.reshape([b, h, w, c]).permute([0, 3, 1, 2]);
            let options = ConvOptions::new([1, 1], [3, 3], [1, 1], c);
            let y = match amp::autocast() {
                None => conv2d(x, weight, None, options),
                Some(dt) => {
                    conv2d(x.cast(dt), weight.cast(dt), None, options).cast(FloatDType::F32)
                }
            };
            (y + bias.reshape([1, c, 1, 1]))
                .permute([0, 2, 3, 1])
                .reshape([b, n, c])
        };
        q.clone() + self.projector.forward_pointwise_tokens(q)
    }

    /// The three depthwise kernels and the identity as one `(C, 1, 7, 7)` kernel, and the
    /// mean bias.
    fn folded_kernel(&self, c: usize, device: &Device) -> (Tensor<4>, Tensor<1>) {
        let padded = |conv: &Conv2d| {
            let k = conv.weight.val().dims()[2];
            let pad = (7 - k) / 2;
            conv.weight.val().pad(
                [(0, 0), (0, 0), (pad, pad), (pad, pad)],
                PadMode::Constant(0.0),
            )
        };
        let bias = |conv: &Conv2d| match &conv.bias {
            Some(b) => b.val(),
            None => Tensor::zeros([c], device),
        };
        let mut centre = vec![0f32; c * 49];
        for ch in 0..c {
            centre[ch * 49 + 24] = 1.0;
        }
        let identity = Tensor::<4>::from_data(TensorData::new(centre, [c, 1, 7, 7]), device);
        let weight =
            (padded(&self.conv1) + padded(&self.conv2) + padded(&self.conv3)) / 3.0 + identity;
        let bias = (bias(&self.conv1) + bias(&self.conv2) + bias(&self.conv3)) / 3.0;
        (weight, bias)
    }
}

/// The Mona adapter: scaled LayerNorm, down-projection, multi-cognitive
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
        let [_, n, c] = x.dims();
        let (h, w) = hw;
        assert_eq!(n, h * w, "Mona: {n} tokens for a {h}x{w} grid");
        let u = self.norm.forward(x.clone()) * self.gamma.val().reshape([1, 1, c])
            + x.clone() * self.gammax.val().reshape([1, 1, c]);
        let p = self.project1.forward(u);
        let r = self.adapter_conv.forward_tokens(p, hw);
        let s = self.dropout.forward_gelu(r, training);
        x + self.project2.forward(s)
    }
}
