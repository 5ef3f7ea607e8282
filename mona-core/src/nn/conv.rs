use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, FloatDType, Tensor};

use super::init;

/// `nn.Conv2d` with symmetric zero padding; weight `[out, in/groups, kh, kw]`.
#[derive(Module, Debug)]
pub struct Conv2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Conv2d {
    /// PyTorch's default init: kaiming-uniform a=√5 (bound 1/√fan_in) for weight and bias.
    #[allow(clippy::too_many_arguments)]
    pub fn torch_default(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
        bias: bool,
        device: &Device,
    ) -> Self {
        let fan_in = (c_in / groups) * kernel * kernel;
        let bound = init::kaiming_uniform_bound(fan_in);
        Self {
            weight: init::uniform([c_out, c_in / groups, kernel, kernel], bound, device),
            bias: bias.then(|| init::uniform([c_out], bound, device)),
            stride,
            padding,
            groups,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let options = ConvOptions::new(
            [self.stride, self.stride],
            [self.padding, self.padding],
            [1, 1],
            self.groups,
        );
        let (w, b) = (self.weight.val(), self.bias.as_ref().map(|b| b.val()));
        let [c_out, c_in, kh, kw] = w.dims();
        if kh == 1 && kw == 1 && self.groups == 1 && self.stride == 1 && self.padding == 0 {
            // A pointwise conv is a matrix product over channels. burn 0.22.1's CUDA conv
            // kernels take 17 ms (forward + backward) for Mona's 64→64 projector at batch 32,
            // 56×56, where the equivalent batched matmul is a tiny GEMM; same numbers up to
            // summation order.
            let [batch, _, h, wd] = x.dims();
            let y = super::amp::matmul(
                w.reshape([1, c_out, c_in]),
                x.reshape([batch, c_in, h * wd]),
            );
            let y = match b {
                Some(b) => y + b.reshape([1, c_out, 1]),
                None => y,
            };
            return y.reshape([batch, c_out, h, wd]);
        }
        match super::amp::autocast() {
            None => conv2d(x, w, b, options),
            Some(dt) => {
                conv2d(x.cast(dt), w.cast(dt), b.map(|b| b.cast(dt)), options).cast(FloatDType::F32)
            }
        }
    }

    /// A 1×1 convolution (stride 1, no padding, no groups) on channels-last `B×N×C_in`
    /// tokens: the matrix product `x·Wᵀ + b` over channels.
    pub fn forward_pointwise_tokens(&self, x: Tensor<3>) -> Tensor<3> {
        let [c_out, c_in, kh, kw] = self.weight.val().dims();
        assert!(
            kh == 1 && kw == 1 && self.groups == 1 && self.stride == 1 && self.padding == 0,
            "forward_pointwise_tokens on a {kh}x{kw} conv (groups {}, stride {}, padding {})",
            self.groups,
            self.stride,
            self.padding
        );
        if super::amp::autocast().is_none() {
            let w = self.weight.val().reshape([c_out, c_in]);
            return super::linear(x, w, self.bias.as_ref().map(|b| b.val()));
        }
        let w = self.weight.val().reshape([1, c_out, c_in]).swap_dims(1, 2);
        let y = super::amp::matmul(x, w);
        match &self.bias {
            Some(b) => y + b.val().reshape([1, 1, c_out]),
            None => y,
        }
    }
}
