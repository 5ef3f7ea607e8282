//! Depthwise convolution (stride 1, "same" zero padding, odd square kernel) on channels-last
//! `(B, H, W, C)` maps, as one differentiable op.
//!
//! Mona's convolutions act on its 64-channel bottleneck, which arrives as `(B, H·W, 64)`
//! tokens: channels last. burn-flex's convolution wants `(B, C, H, W)` (a permuted copy
//! each way), runs its depthwise input gradient through a scalar transposed-convolution
//! loop and its weight gradient one group at a time. Here every pixel's channels are one
//! contiguous vector, so each of the three passes is a vectorised loop over channels,
//! parallel over image rows:
//! - forward: `y[p] = b + Σ_t w[t] ⊙ x[p + t]`;
//! - input gradient: the same with the flipped kernel and no bias;
//! - weight and bias gradients: `Σ_p dy[p] ⊙ x[p + t]` and `Σ_p dy[p]`, summed per task of
//!   a fixed number of rows and then over the tasks in order (the same result on every
//!   machine).

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{Values, register_tracked, sum_partials, tensor, zeroed};
use super::simd::multiversion;

/// Image rows per parallel task of the weight gradient.
const ROWS: usize = 4;

/// Depthwise convolution of channels-last `x` `(B, H, W, C)` with `weight` `(C, 1, k, k)`
/// (PyTorch's layout) and `bias` `(C)`, padding `k / 2`, and its gradients. Implemented for
/// burn-flex (here) and for cubecl (with the `cube-kernels` feature); other backends take
/// burn's grouped `conv2d`.
#[backend_extension(
    Autodiff,
    Flex,
    Cube: cfg(feature = "cube-kernels"),
    Fusion: cfg(feature = "cube-kernels")
)]
pub trait DepthwiseNhwcBackend: Backend {
    #[fusion(dtype = x, shape = x)]
    fn depthwise_nhwc(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The input gradient: the convolution of `grad` with the flipped kernel, no bias.
    #[fusion(dtype = grad, shape = grad)]
    fn depthwise_nhwc_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// `(dweight (C, 1, k, k), dbias (C))`.
    #[fusion(meta = |x, weight, _grad| (
        weight.clone(),
        burn::backend::fusion::custom::TensorSpec::new([weight.shape[0]].into(), x.dtype),
    ))]
    fn depthwise_nhwc_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// The geometry of one call.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    c: usize,
    k: usize,
}

impl Geometry {
    fn of(x: &[usize], weight: &[usize]) -> Self {
        assert_eq!(x.len(), 4, "depthwise_nhwc: x is (B, H, W, C)");
        let k = weight[2];
        assert!(
            weight == [x[3], 1, k, k] && k % 2 == 1,
            "depthwise_nhwc: weight {weight:?} for {x:?} (want (C, 1, k, k), k odd)"
        );
        Self {
            h: x[1],
            w: x[2],
            c: x[3],
            k,
        }
    }

    /// `(C, 1, k, k)` → tap-major `(k·k, C)`, flipped for the input gradient.
    fn taps(&self, weight: &[f32], flip: bool) -> Vec<f32> {
        let (c, kk) = (self.c, self.k * self.k);
        let mut taps = vec![0f32; kk * c];
        for ch in 0..c {
            for t in 0..kk {
                let src = if flip { kk - 1 - t } else { t };
                taps[t * c + ch] = weight[ch * kk + src];
            }
        }
        taps
    }
}

/// Calls `f(tap, iy, ix)` for each tap of the `k×k` kernel centred on output pixel
/// `(y, x)` whose input pixel `(iy, ix)` lies inside the `h×w` image (zero padding: the
/// others contribute nothing), in tap order.
#[inline(always)]
fn for_each_tap(
    y: usize,
    x: usize,
    h: usize,
    w: usize,
    k: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let pad = k / 2;
    for dy in 0..k {
        let Some(iy) = (y + dy).checked_sub(pad).filter(|&iy| iy < h) else {
            continue;
        };
        for dx in 0..k {
            let Some(ix) = (x + dx).checked_sub(pad).filter(|&ix| ix < w) else {
                continue;
            };
            f(dy * k + dx, iy, ix);
        }
    }
}

multiversion! {
    /// One output row `y` of image `image` (`(H, W, C)`, channels last): `out` is `(W, C)`.
    fn conv_row(image: &[f32], taps: &[f32], bias: Option<&[f32]>, out: &mut [f32], y: usize, h: usize, k: usize) {
        let c = taps.len() / (k * k);
        let w = out.len() / c;
        for (x, acc) in out.chunks_exact_mut(c).enumerate() {
            match bias {
                Some(b) => acc.copy_from_slice(b),
                None => acc.fill(0.0),
            }
            for_each_tap(y, x, h, w, k, |t, iy, ix| {
                let src = &image[(iy * w + ix) * c..(iy * w + ix + 1) * c];
                let tap = &taps[t * c..(t + 1) * c];
                for ((a, s), t) in acc.iter_mut().zip(src).zip(tap) {
                    *a += *s * *t;
                }
            });
        }
    }
}

multiversion! {
    /// Adds output row `y`'s contributions to the tap-major weight gradient `(k·k, C)` and
    /// the bias gradient `(C)`, both in `acc` (`(k·k + 1)·C`).
    fn weight_grad_row(image: &[f32], dy_row: &[f32], acc: &mut [f32], y: usize, h: usize, k: usize) {
        let c = acc.len() / (k * k + 1);
        let w = dy_row.len() / c;
        let (taps, bias) = acc.split_at_mut(k * k * c);
        for (x, g) in dy_row.chunks_exact(c).enumerate() {
            for (b, g) in bias.iter_mut().zip(g) {
                *b += *g;
            }
            for_each_tap(y, x, h, w, k, |t, iy, ix| {
                let src = &image[(iy * w + ix) * c..(iy * w + ix + 1) * c];
                let tap = &mut taps[t * c..(t + 1) * c];
                for ((t, s), g) in tap.iter_mut().zip(src).zip(g) {
                    *t += *s * *g;
                }
            });
        }
    }
}

/// The convolution of every row of `x` (`(B, H, W, C)` values) with tap-major `taps`.
fn convolve(
    x: &[f32],
    dims: &[usize],
    g: Geometry,
    taps: &[f32],
    bias: Option<&[f32]>,
) -> FlexTensor {
    let row_len = g.w * g.c;
    let image_len = g.h * row_len;
    let mut out = zeroed(x.len());
    out.par_chunks_mut(row_len).enumerate().for_each(|(r, o)| {
        let (b, y) = (r / g.h, r % g.h);
        conv_row(
            &x[b * image_len..(b + 1) * image_len],
            taps,
            bias,
            o,
            y,
            g.h,
            g.k,
        );
    });
    tensor(out, dims.to_vec())
}

fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    let (x, weight, bias) = (Values::of(x), Values::of(weight), Values::of(bias));
    let g = Geometry::of(&x.dims(), &weight.dims());
    let taps = g.taps(weight.as_slice(), false);
    convolve(x.as_slice(), &x.dims(), g, &taps, Some(bias.as_slice()))
}

fn input_grad(weight: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (weight, grad) = (Values::of(weight), Values::of(grad));
    let g = Geometry::of(&grad.dims(), &weight.dims());
    let taps = g.taps(weight.as_slice(), true);
    convolve(grad.as_slice(), &grad.dims(), g, &taps, None)
}

/// `(dweight (C, 1, k, k), dbias (C))`.
fn weight_grad(
    x: &FlexTensor,
    weight_dims: &[usize],
    grad: &FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let (x, grad) = (Values::of(x), Values::of(grad));
    let dims = x.dims();
    let g = Geometry::of(&dims, weight_dims);
    let (src, dy) = (x.as_slice(), grad.as_slice());
    let row_len = g.w * g.c;
    let image_len = g.h * row_len;
    let kk = g.k * g.k;
    let partials: Vec<Vec<f32>> = dy
        .par_chunks(ROWS * row_len)
        .enumerate()
        .map(|(task, rows)| {
            let mut acc = vec![0f32; (kk + 1) * g.c];
            for (i, dy_row) in rows.chunks_exact(row_len).enumerate() {
                let r = task * ROWS + i;
                let (b, y) = (r / g.h, r % g.h);
                let image = &src[b * image_len..(b + 1) * image_len];
                weight_grad_row(image, dy_row, &mut acc, y, g.h, g.k);
            }
            acc
        })
        .collect();
    let mut total = sum_partials(&partials, (kk + 1) * g.c);
    let mut dw = vec![0f32; kk * g.c];
    for t in 0..kk {
        for ch in 0..g.c {
            dw[ch * kk + t] = total[t * g.c + ch];
        }
    }
    let db = total.split_off(kk * g.c);
    (tensor(dw, weight_dims.to_vec()), tensor(db, vec![g.c]))
}

impl DepthwiseNhwcBackend for Flex {
    fn depthwise_nhwc(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        forward(&x, &weight, &bias)
    }

    fn depthwise_nhwc_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        input_grad(&weight, &grad)
    }

    fn depthwise_nhwc_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        weight_grad(&x, weight.layout().shape(), &grad)
    }
}

impl<B: DepthwiseNhwcBackend, C: CheckpointStrategy> DepthwiseNhwcBackend for Autodiff<B, C> {
    fn depthwise_nhwc(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct DepthwiseBackward;

        impl<B: DepthwiseNhwcBackend> Backward<B, 3> for DepthwiseBackward {
            /// The input (for the weight gradient) and the weight (for the input gradient).
            type State = (FloatTensor<B>, FloatTensor<B>);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_x, node_w, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, weight) = ops.state;
                if node_w.is_some() || node_b.is_some() {
                    let (dw, db) = B::depthwise_nhwc_param_grads(x, weight.clone(), grad.clone());
                    register_tracked::<B, 2>(
                        grads,
                        [(node_w.map(|n| n.id), dw), (node_b.map(|n| n.id), db)],
                    );
                }
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::depthwise_nhwc_input_grad(weight, grad));
                }
            }
        }

        let (x, node_x) = x.into_parts();
        let (weight, node_w) = weight.into_parts();
        let (bias, node_b) = bias.into_parts();
        let out = B::depthwise_nhwc(x.clone(), weight.clone(), bias);
        match DepthwiseBackward
            .prepare::<C>([node_x, node_w, node_b])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, weight), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    /// Not differentiable itself (a backward pass of the op above, run outside the graph).
    fn depthwise_nhwc_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::depthwise_nhwc_input_grad(
            weight.into_primitive(),
            grad.into_primitive(),
        ))
    }

    /// Not differentiable itself (a backward pass of the op above, run outside the graph).
    fn depthwise_nhwc_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, db) = B::depthwise_nhwc_param_grads(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
        );
        (FloatTensor::<Self>::new(dw), FloatTensor::<Self>::new(db))
    }
}

/// The fused op on tensors (f32, on a flex or, with the cubecl kernels, a cubecl device).
pub fn depthwise_nhwc(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as DepthwiseNhwcBackend>::depthwise_nhwc(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
    ))
}
