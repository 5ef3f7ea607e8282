use burn::tensor::Tensor;

use crate::fused::{self, DropMask};

/// Exact (erf) GELU, `x·Φ(x)`, as PyTorch's `nn.GELU()`.
///
/// On the flex device and on cubecl devices this is the fused kernel (one pass each way,
/// keeping only `x` for the backward pass). Elsewhere it is composed from tensor ops: burn 0.22.1's
/// own `gelu` has an exact forward, but its default backward (used by the cuda backend) is
/// the derivative of the tanh approximation, while composing `erf` keeps both exact.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fused::enabled_with_cube(&x) {
        return fused::fused_gelu(x, None);
    }
    composed_gelu(x)
}

/// `dropout_p(gelu(x))` (inverted dropout, active only when `training`), fused into one op
/// on the flex device and on cubecl devices: the mask is not stored but recomputed from a
/// seed drawn from the device's random stream. Elsewhere, [`gelu`] then burn's Bernoulli
/// mask.
pub fn gelu_dropout<const D: usize>(x: Tensor<D>, p: f64, training: bool) -> Tensor<D> {
    let active = training && p > 0.0;
    if fused::enabled_with_cube(&x) {
        let mask = active.then(|| DropMask::draw(p, x.shape().num_elements(), &x.device()));
        return fused::fused_gelu(x, mask);
    }
    let y = composed_gelu(x);
    if active {
        super::dropout::bernoulli_dropout(y, p)
    } else {
        y
    }
}

fn composed_gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let cdf = (x.clone() * std::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
        * 0.5;
    x * cdf
}
