//! LayerNorm over the last dimension, forward and backward, as cubecl kernels: one unit per
//! row for the normalisation and the input gradient; the weight and bias gradients summed
//! per block of rows, then over the blocks in order.

use burn::backend::tensor::FloatTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::*;

use super::{contiguous, elementwise, empty_like};
use crate::fused::FusedLayerNormBackend;

/// Rows per block of the parameter gradients' partial sums (as the flex kernel's task).
const ROWS: usize = 64;

/// The mean and `1/√(var + eps)` of the row starting at `base` (biased variance, two
/// passes).
#[cube]
fn row_stats(x: &Tensor<f32>, base: usize, c: usize, eps: f32) -> (f32, f32) {
    let mut sum = 0.0_f32;
    for i in 0..c {
        sum += x[base + i];
    }
    let mean = sum / c as f32;
    let mut sq = 0.0_f32;
    for i in 0..c {
        let d = x[base + i] - mean;
        sq += d * d;
    }
    (mean, 1.0_f32 / f32::sqrt(sq / c as f32 + eps))
}

#[cube(launch)]
fn forward_kernel(
    x: &Tensor<f32>,
    weight: &Tensor<f32>,
    bias: &Tensor<f32>,
    out: &mut Tensor<f32>,
    eps: f32,
) {
    let c = weight.len();
    let row = ABSOLUTE_POS;
    if row * c >= x.len() {
        terminate!();
    }
    let base = row * c;
    let (mean, rstd) = row_stats(x, base, c, eps);
    for i in 0..c {
        out[base + i] = (x[base + i] - mean) * rstd * weight[i] + bias[i];
    }
}

/// The input gradient of each row, and each row's statistics (for the parameter pass).
#[cube(launch)]
fn input_grad_kernel(
    x: &Tensor<f32>,
    weight: &Tensor<f32>,
    dy: &Tensor<f32>,
    dx: &mut Tensor<f32>,
    stats: &mut Tensor<f32>,
    eps: f32,
) {
    let c = weight.len();
    let row = ABSOLUTE_POS;
    if row * c >= x.len() {
        terminate!();
    }
    let base = row * c;
    let (mean, rstd) = row_stats(x, base, c, eps);
    let mut sum_g = 0.0_f32;
    let mut sum_gh = 0.0_f32;
    for i in 0..c {
        let g = dy[base + i] * weight[i];
        sum_g += g;
        sum_gh += g * ((x[base + i] - mean) * rstd);
    }
    let mean_g = sum_g / c as f32;
    let mean_gh = sum_gh / c as f32;
    for i in 0..c {
        let h = (x[base + i] - mean) * rstd;
        dx[base + i] = rstd * (dy[base + i] * weight[i] - mean_g - h * mean_gh);
    }
    stats[row * 2] = mean;
    stats[row * 2 + 1] = rstd;
}

/// Per block of `ROWS` rows and channel: `Σ dy·x̂` (at `block·2C + ch`) and `Σ dy` (at
/// `block·2C + C + ch`).
#[cube(launch)]
fn param_partials_kernel(
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    stats: &Tensor<f32>,
    partials: &mut Tensor<f32>,
    c: usize,
    #[comptime] rows_per_block: usize,
) {
    let c2 = 2 * c;
    let unit = ABSOLUTE_POS;
    if unit * 2 >= partials.len() {
        terminate!();
    }
    let block = unit / c;
    let ch = unit % c;
    let rows = stats.len() / 2;
    let first = block * rows_per_block;
    let last = usize::min(first + rows_per_block, rows);
    let mut dw = 0.0_f32;
    let mut db = 0.0_f32;
    for row in first..last {
        let g = dy[row * c + ch];
        dw += g * ((x[row * c + ch] - stats[row * 2]) * stats[row * 2 + 1]);
        db += g;
    }
    partials[block * c2 + ch] = dw;
    partials[block * c2 + c + ch] = db;
}

/// The sums over the blocks, in block order: `dw[ch]`, `db[ch]`.
#[cube(launch)]
fn param_sum_kernel(partials: &Tensor<f32>, dw: &mut Tensor<f32>, db: &mut Tensor<f32>) {
    let c = dw.len();
    let ch = ABSOLUTE_POS;
    if ch >= c {
        terminate!();
    }
    let blocks = partials.len() / (2 * c);
    let mut w = 0.0_f32;
    let mut b = 0.0_f32;
    for block in 0..blocks {
        w += partials[block * 2 * c + ch];
        b += partials[block * 2 * c + c + ch];
    }
    dw[ch] = w;
    db[ch] = b;
}

impl FusedLayerNormBackend for CubeBackend {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        let (x, weight, bias) = (contiguous(x), contiguous(weight), contiguous(bias));
        let rows = x.meta.num_elements() / weight.meta.num_elements();
        let out = empty_like(&x, x.meta.shape().clone());
        let (count, dim) = elementwise(&x, rows);
        forward_kernel::launch(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            weight.into_tensor_arg(),
            bias.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            eps as f32,
        );
        out
    }

    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
        params: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (x, weight, grad) = (contiguous(x), contiguous(weight), contiguous(grad));
        let c = weight.meta.num_elements();
        let rows = x.meta.num_elements() / c;
        let dx = empty_like(&x, x.meta.shape().clone());
        let stats = empty_like(&x, [rows, 2].into());
        let (count, dim) = elementwise(&x, rows);
        input_grad_kernel::launch(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            weight.clone().into_tensor_arg(),
            grad.clone().into_tensor_arg(),
            dx.clone().into_tensor_arg(),
            stats.clone().into_tensor_arg(),
            eps as f32,
        );
        let dw = empty_like(&x, [c].into());
        let db = empty_like(&x, [c].into());
        if !params {
            let zeros = |t: &FloatTensor<Self>| {
                burn_cubecl::ops::numeric::zeros_client(
                    t.client.clone(),
                    t.device.clone(),
                    [c].into(),
                    burn::tensor::DType::F32,
                )
            };
            return (dx, zeros(&dw), zeros(&db));
        }
        let blocks = rows.div_ceil(ROWS);
        let partials = empty_like(&x, [blocks, 2 * c].into());
        let (count, dim) = elementwise(&x, blocks * c);
        param_partials_kernel::launch(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            grad.into_tensor_arg(),
            stats.into_tensor_arg(),
            partials.clone().into_tensor_arg(),
            c,
            ROWS,
        );
        let (count, dim) = elementwise(&x, c);
        param_sum_kernel::launch(
            &x.client,
            count,
            dim,
            partials.into_tensor_arg(),
            dw.clone().into_tensor_arg(),
            db.clone().into_tensor_arg(),
        );
        (dx, dw, db)
    }
}
