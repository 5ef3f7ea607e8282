use burn::tensor::Tensor;

/// Exact (erf) GELU, written from tensor ops.
///
/// burn 0.22.1's fused `gelu` has an exact forward, but its default backward (used by the cuda
/// backend) is the derivative of the tanh approximation. Composing `erf` keeps forward and
/// backward exact on every backend, as PyTorch's `nn.GELU()` is.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cdf = (x.clone() * std::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        * 0.5;
    x * cdf
}
