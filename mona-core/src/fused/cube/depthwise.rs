//! Depthwise convolution on channels-last maps (stride 1, "same" zero padding, odd square
//! kernel), forward and backward, as cubecl kernels: one unit per output element for the
//! convolution and the input gradient; the weight and bias gradients summed per block of
//! image rows, then over the blocks in order.

use burn::backend::tensor::FloatTensor;
use burn_cubecl::CubeBackend;
use cubecl::prelude::*;

use super::{contiguous, elementwise, empty_like};
use crate::fused::DepthwiseNhwcBackend;

/// Image rows (over the whole batch) per block of the parameter gradients' partial sums
/// (as the flex kernel's task).
const ROWS: usize = 4;

/// The geometry of a launch: map height, width, channels, kernel size.
#[derive(CubeType, CubeLaunch, Clone, Copy)]
pub struct Geometry {
    h: usize,
    w: usize,
    c: usize,
    k: usize,
}

/// `out[b, y, x, ch] = bias[ch] + Σ_taps w[ch, tap] · src[b, y + dy − p, x + dx − p, ch]`,
/// the taps flipped when `flip` (the input gradient, without bias).
#[cube(launch)]
fn convolve_kernel(
    src: &Tensor<f32>,
    weight: &Tensor<f32>,
    bias: &Tensor<f32>,
    out: &mut Tensor<f32>,
    geo: Geometry,
    #[comptime] flip: bool,
    #[comptime] with_bias: bool,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let ch = i % geo.c;
    let pixel = i / geo.c;
    let x = pixel % geo.w;
    let row = pixel / geo.w;
    let y = row % geo.h;
    let image = row / geo.h;
    let pad = geo.k / 2;
    let kk = geo.k * geo.k;
    let mut acc = 0.0_f32;
    if with_bias {
        acc = bias[ch];
    }
    for dy in 0..geo.k {
        let iy = y + dy;
        if iy >= pad && iy - pad < geo.h {
            for dx in 0..geo.k {
                let ix = x + dx;
                if ix >= pad && ix - pad < geo.w {
                    let mut tap = dy * geo.k + dx;
                    if flip {
                        tap = kk - 1 - tap;
                    }
                    let at = ((image * geo.h + iy - pad) * geo.w + ix - pad) * geo.c + ch;
                    acc += src[at] * weight[ch * kk + tap];
                }
            }
        }
    }
    out[i] = acc;
}

/// Per block of `ROWS` image rows, tap `j` (`j = k²`: the bias) and channel: the sum of
/// `dy[p] · x[p + tap]` (or of `dy[p]`) over the block's pixels, at `block·(k²+1)·C + j·C + ch`.
#[cube(launch)]
fn param_partials_kernel(
    x: &Tensor<f32>,
    dy: &Tensor<f32>,
    partials: &mut Tensor<f32>,
    geo: Geometry,
    rows: usize,
    #[comptime] rows_per_block: usize,
) {
    let kk = geo.k * geo.k;
    let per_block = (kk + 1) * geo.c;
    let unit = ABSOLUTE_POS;
    if unit >= partials.len() {
        terminate!();
    }
    let block = unit / per_block;
    let j = (unit % per_block) / geo.c;
    let ch = unit % geo.c;
    let pad = geo.k / 2;
    let first = block * rows_per_block;
    let last = usize::min(first + rows_per_block, rows);
    let ty = j / geo.k;
    let tx = j % geo.k;
    let mut acc = 0.0_f32;
    for row in first..last {
        let y = row % geo.h;
        let image = row / geo.h;
        for x_pos in 0..geo.w {
            let g = dy[(row * geo.w + x_pos) * geo.c + ch];
            if j == kk {
                acc += g;
            } else {
                let iy = y + ty;
                let ix = x_pos + tx;
                if iy >= pad && iy - pad < geo.h && ix >= pad && ix - pad < geo.w {
                    let at = ((image * geo.h + iy - pad) * geo.w + ix - pad) * geo.c + ch;
                    acc += x[at] * g;
                }
            }
        }
    }
    partials[unit] = acc;
}

/// The sums over the blocks, in block order, into `dw` `(C, 1, k, k)` and `db` `(C)`.
#[cube(launch)]
fn param_sum_kernel(
    partials: &Tensor<f32>,
    dw: &mut Tensor<f32>,
    db: &mut Tensor<f32>,
    geo: Geometry,
) {
    let kk = geo.k * geo.k;
    let per_block = (kk + 1) * geo.c;
    let unit = ABSOLUTE_POS;
    if unit >= per_block {
        terminate!();
    }
    let blocks = partials.len() / per_block;
    let mut acc = 0.0_f32;
    for block in 0..blocks {
        acc += partials[block * per_block + unit];
    }
    let j = unit / geo.c;
    let ch = unit % geo.c;
    if j == kk {
        db[ch] = acc;
    } else {
        dw[ch * kk + j] = acc;
    }
}

/// The geometry of `x` `(B, H, W, C)` with `weight` `(C, 1, k, k)`, and the number of image
/// rows over the batch.
fn geometry(
    x: &FloatTensor<CubeBackend>,
    weight: &FloatTensor<CubeBackend>,
) -> (GeometryLaunch, usize) {
    let dims = x.meta.shape().to_vec();
    let wd = weight.meta.shape().to_vec();
    assert_eq!(dims.len(), 4, "depthwise_nhwc: x is (B, H, W, C)");
    let k = wd[2];
    assert!(
        wd == [dims[3], 1, k, k] && k % 2 == 1,
        "depthwise_nhwc: weight {wd:?} for {dims:?} (want (C, 1, k, k), k odd)"
    );
    (
        GeometryLaunch::new(dims[1], dims[2], dims[3], k),
        dims[0] * dims[1],
    )
}

/// `src` convolved with `weight` (flipped when `flip`), plus `bias` when given.
fn convolve(
    src: FloatTensor<CubeBackend>,
    weight: FloatTensor<CubeBackend>,
    bias: Option<FloatTensor<CubeBackend>>,
    flip: bool,
) -> FloatTensor<CubeBackend> {
    let (src, weight) = (contiguous(src), contiguous(weight));
    let (geo, _) = geometry(&src, &weight);
    let out = empty_like(&src, src.meta.shape().clone());
    let (count, dim) = elementwise(&src, src.meta.num_elements());
    let with_bias = bias.is_some();
    let bias = bias.map(contiguous).unwrap_or_else(|| weight.clone());
    convolve_kernel::launch(
        &src.client,
        count,
        dim,
        src.clone().into_tensor_arg(),
        weight.into_tensor_arg(),
        bias.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        geo,
        flip,
        with_bias,
    );
    out
}

impl DepthwiseNhwcBackend for CubeBackend {
    fn depthwise_nhwc(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        convolve(x, weight, Some(bias), false)
    }

    fn depthwise_nhwc_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        convolve(grad, weight, None, true)
    }

    fn depthwise_nhwc_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (x, grad) = (contiguous(x), contiguous(grad));
        let wshape = weight.meta.shape().clone();
        let (k, c) = (wshape[2], wshape[0]);
        let per_block = (k * k + 1) * c;
        let (_, rows) = geometry(&x, &weight);
        let blocks = rows.div_ceil(ROWS);
        let partials = empty_like(&x, [blocks, per_block].into());
        let (count, dim) = elementwise(&x, blocks * per_block);
        let (geo, _) = geometry(&x, &weight);
        param_partials_kernel::launch(
            &x.client,
            count,
            dim,
            x.clone().into_tensor_arg(),
            grad.into_tensor_arg(),
            partials.clone().into_tensor_arg(),
            geo,
            rows,
            ROWS,
        );
        let dw = empty_like(&x, wshape);
        let db = empty_like(&x, [c].into());
        let (count, dim) = elementwise(&x, per_block);
        let (geo, _) = geometry(&x, &weight);
        param_sum_kernel::launch(
            &x.client,
            count,
            dim,
            partials.into_tensor_arg(),
            dw.clone().into_tensor_arg(),
            db.clone().into_tensor_arg(),
            geo,
        );
        (dw, db)
    }
}
