//! The GELU with optional inverted dropout, forward and backward, as cubecl kernels.

use burn::backend::tensor::FloatTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::*;

use super::{contiguous, elementwise, empty_like};
use crate::fused::{DropMask, FusedGeluBackend};
use crate::random::keep_threshold;

/// `1/√2`.
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `1/√(2π)`.
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `Φ(x)`, the standard normal CDF, by the flex kernels' formulas (fdlibm's rational `erf`
/// near zero, the Chebyshev fit of `erfc` beyond).
#[cube]
fn normal_cdf(x: f32) -> f32 {
    let t = x * FRAC_1_SQRT_2;
    let z = f32::abs(t);
    let zz = t * t;
    let r = 0.128_379_17_f32
        + zz * (-0.325_042_1_f32
            + zz * (-0.028_481_75_f32 + zz * (-0.005_770_270_3_f32 + zz * -0.000_023_763_018_f32)));
    let s = 1.0_f32
        + zz * (0.397_917_2_f32
            + zz * (0.065_022_25_f32
                + zz * (0.005_081_306_f32
                    + zz * (0.000_132_494_74_f32 + zz * -0.000_003_960_228_f32))));
    let small = 0.5_f32 + 0.5_f32 * (t + t * (r / s));
    let u = 1.0_f32 / (1.0_f32 + 0.5_f32 * z);
    let mut p = 0.170_872_77_f32;
    p = p * u - 0.822_152_23_f32;
    p = p * u + 1.488_515_9_f32;
    p = p * u - 1.135_204_f32;
    p = p * u + 0.278_868_07_f32;
    p = p * u - 0.186_288_06_f32;
    p = p * u + 0.096_784_18_f32;
    p = p * u + 0.374_091_96_f32;
    p = p * u + 1.000_023_7_f32;
    p = p * u - 1.265_512_2_f32;
    let half_erfc = 0.5_f32 * (u * f32::exp(p - z * z));
    let mut tail = 1.0_f32 - half_erfc;
    if x < 0.0_f32 {
        tail = half_erfc;
    }
    let mut cdf = tail;
    if z < 0.843_75_f32 {
        cdf = small;
    }
    cdf
}

/// The dropout hash of element `index` (`crate::random::hash32`, in 32-bit lanes).
#[cube]
pub(super) fn hash32(seed_lo: u32, seed_hi: u32, index: u32) -> u32 {
    let mut x = (index * 0x9E37_79B9) ^ seed_lo;
    x ^= x >> 16;
    x *= 0x7FEB_352D;
    x ^= x >> 15;
    x *= 0x846C_A68B;
    x ^= x >> 16;
    x ^= seed_hi;
    x ^= x >> 16;
    x *= 0x7FEB_352D;
    x ^= x >> 15;
    x *= 0x846C_A68B;
    x ^= x >> 16;
    x
}

/// The dropout of one launch: the draw's seed halves, its first element, the keep
/// threshold and the keep probability.
#[derive(CubeType, CubeLaunch, Clone, Copy)]
pub struct DropArgs {
    seed_lo: u32,
    seed_hi: u32,
    first: u32,
    threshold: u32,
    keep: f32,
}

/// The scale of element `index` under the dropout: `1/keep` where kept, else 0.
#[cube]
fn drop_scale(drop: &DropArgs, index: usize) -> f32 {
    let global = drop.first + index as u32;
    let mut scale = 0.0_f32;
    if hash32(drop.seed_lo, drop.seed_hi, global) < drop.threshold {
        scale = 1.0_f32 / drop.keep;
    }
    scale
}

#[cube(launch)]
fn gelu_kernel(x: &Tensor<f32>, out: &mut Tensor<f32>, drop: DropArgs, #[comptime] dropout: bool) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let v = x[i];
    let y = v * normal_cdf(v);
    if dropout {
        let kept = drop_scale(&drop, i);
        out[i] = select(kept == 0.0_f32, 0.0_f32, y / drop.keep);
    } else {
        out[i] = y;
    }
}

#[cube(launch)]
fn gelu_backward_kernel(
    x: &Tensor<f32>,
    grad: &Tensor<f32>,
    out: &mut Tensor<f32>,
    drop: DropArgs,
    #[comptime] dropout: bool,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let v = x[i];
    let derivative = normal_cdf(v) + v * (FRAC_1_SQRT_2PI * f32::exp(-0.5_f32 * (v * v)));
    if dropout {
        let kept = drop_scale(&drop, i);
        out[i] = select(kept == 0.0_f32, 0.0_f32, (grad[i] / drop.keep) * derivative);
    } else {
        out[i] = grad[i] * derivative;
    }
}

/// The launch arguments of `mask` (unused by a launch without dropout).
fn drop_args(mask: Option<DropMask>) -> DropArgsLaunch {
    match mask {
        Some(m) => DropArgsLaunch::new(
            m.draw.seed as u32,
            (m.draw.seed >> 32) as u32,
            m.draw.first_element as u32,
            keep_threshold(m.keep as f64),
            m.keep,
        ),
        None => DropArgsLaunch::new(0, 0, 0, 0, 1.0),
    }
}

impl FusedGeluBackend for CubeBackend {
    fn fused_gelu(x: FloatTensor<Self>, mask: Option<DropMask>) -> FloatTensor<Self> {
        let x = contiguous(x);
        let n = x.meta.num_elements();
        let out = empty_like(&x, x.meta.shape().clone());
        let (count, dim) = elementwise(&x, n);
        gelu_kernel::launch(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            out.clone().into_tensor_arg(),
            drop_args(mask),
            mask.is_some(),
        );
        out
    }

    fn fused_gelu_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mask: Option<DropMask>,
    ) -> FloatTensor<Self> {
        let (x, grad) = (contiguous(x), contiguous(grad));
        let n = x.meta.num_elements();
        let out = empty_like(&x, x.meta.shape().clone());
        let (count, dim) = elementwise(&x, n);
        gelu_backward_kernel::launch(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            grad.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            drop_args(mask),
            mask.is_some(),
        );
        out
    }
}
