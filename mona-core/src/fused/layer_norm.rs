//! LayerNorm over the last dimension as one differentiable op.
//!
//! burn 0.22.1's autodiff decomposes `layer_norm` into its element-wise steps and keeps the
//! centred and the normalised tensors for the backward pass. Fused, it is one parallel pass
//! over the rows each way and keeps only the input: the backward pass recomputes each row's
//! mean and reciprocal standard deviation, which costs one read of a row it reads anyway.

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
use super::simd::{lane_sum, lane_sum_map2, multiversion};

/// Rows per parallel task. Fixed (not derived from the thread count), so the per-task
/// partial sums of the weight and bias gradients, and with them the results, are the same
/// on every machine.
const ROWS: usize = 64;

/// `LN(x)·weight + bias` over the last dimension, as a backend operation, and its
/// gradients. Implemented for burn-flex (here) and for cubecl (with the `cube-kernels`
/// feature); other backends take burn's `layer_norm`.
#[backend_extension(
    Autodiff,
    Flex,
    Cube: cfg(feature = "cube-kernels"),
    Fusion: cfg(feature = "cube-kernels")
)]
pub trait FusedLayerNormBackend: Backend {
    #[fusion(dtype = x, shape = x)]
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self>;

    /// `(dx, dweight, dbias)` for the output gradient `grad`. Without `params` the last two
    /// are not computed (zeros).
    #[fusion(meta = |x, weight, _grad, _eps, _params| (x.clone(), weight.clone(), weight.clone()))]
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
        params: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// The mean and `1/√(var + eps)` of one row (biased variance, two passes, as PyTorch).
#[inline(always)]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = lane_sum(row) / n;
    let var = lane_sum_map2(row, row, |a, _| (a - mean) * (a - mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

multiversion! {
    fn forward_rows(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32], eps: f32) {
        let c = w.len();
        for (row, o) in x.chunks_exact(c).zip(out.chunks_exact_mut(c)) {
            let (mean, rstd) = row_stats(row, eps);
            for (((o, v), w), b) in o.iter_mut().zip(row).zip(w).zip(b) {
                *o = (*v - mean) * rstd * *w + *b;
            }
        }
    }
}

multiversion! {
    /// The input gradient of each row, and this task's sums of `dy·x̂` and `dy` (the weight
    /// and bias gradients) when `params` holds room for them.
    fn backward_rows(
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        dx: &mut [f32],
        params: &mut [f32],
        eps: f32,
    ) {
        let c = w.len();
        let mut scratch = vec![0f32; 2 * c];
        let (xhat, g) = scratch.split_at_mut(c);
        for ((row, dy), dx) in x.chunks_exact(c).zip(dy.chunks_exact(c)).zip(dx.chunks_exact_mut(c)) {
            let (mean, rstd) = row_stats(row, eps);
            for (((h, g), v), (d, w)) in xhat.iter_mut().zip(g.iter_mut()).zip(row).zip(dy.iter().zip(w)) {
                *h = (*v - mean) * rstd;
                *g = *d * *w;
            }
            let n = c as f32;
            let mean_g = lane_sum(g) / n;
            let mean_gh = lane_sum_map2(g, xhat, |a, b| a * b) / n;
            for ((d, g), h) in dx.iter_mut().zip(g.iter()).zip(xhat.iter()) {
                *d = rstd * (*g - mean_g - *h * mean_gh);
            }
            if !params.is_empty() {
                let (dw, db) = params.split_at_mut(c);
                for (((dw, db), d), h) in dw.iter_mut().zip(db.iter_mut()).zip(dy).zip(xhat.iter()) {
                    *dw += *d * *h;
                    *db += *d;
                }
            }
        }
    }
}

fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor, eps: f64) -> FlexTensor {
    let (x, w, b) = (Values::of(x), Values::of(weight), Values::of(bias));
    let (src, w, b) = (x.as_slice(), w.as_slice(), b.as_slice());
    let c = w.len();
    let mut out = zeroed(src.len());
    out.par_chunks_mut(ROWS * c)
        .zip(src.par_chunks(ROWS * c))
        .for_each(|(o, s)| forward_rows(s, w, b, o, eps as f32));
    tensor(out, x.dims())
}

/// `(dx, Some((dweight, dbias)))`, the parameter gradients only when asked for.
fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    eps: f64,
    params: bool,
) -> (FlexTensor, Option<(FlexTensor, FlexTensor)>) {
    let (x, w, dy) = (Values::of(x), Values::of(weight), Values::of(grad));
    let (src, w, dy) = (x.as_slice(), w.as_slice(), dy.as_slice());
    let c = w.len();
    let mut dx = zeroed(src.len());
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(ROWS * c)
        .zip(src.par_chunks(ROWS * c).zip(dy.par_chunks(ROWS * c)))
        .map(|(d, (s, g))| {
            let mut p = vec![0f32; if params { 2 * c } else { 0 }];
            backward_rows(s, w, g, d, &mut p, eps as f32);
            p
        })
        .collect();
    let dx = tensor(dx, x.dims());
    if !params {
        return (dx, None);
    }
    let mut total = sum_partials(&partials, 2 * c);
    let db = total.split_off(c);
    (dx, Some((tensor(total, vec![c]), tensor(db, vec![c]))))
}

impl FusedLayerNormBackend for Flex {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        forward(&x, &weight, &bias, eps)
    }

    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
        params: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dparams) = backward(&x, &weight, &grad, eps, params);
        let (dw, db) = dparams.unwrap_or_else(|| {
            let c = weight.layout().num_elements();
            (tensor(vec![0.0; c], vec![c]), tensor(vec![0.0; c], vec![c]))
        });
        (dx, dw, db)
    }
}

impl<B: FusedLayerNormBackend, C: CheckpointStrategy> FusedLayerNormBackend for Autodiff<B, C> {
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct LayerNormBackward;

        impl<B: FusedLayerNormBackend> Backward<B, 3> for LayerNormBackward {
            type State = (FloatTensor<B>, FloatTensor<B>, f64);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_x, node_w, node_b] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x, weight, eps) = ops.state;
                let params = node_w.is_some() || node_b.is_some();
                let (dx, dw, db) = B::fused_layer_norm_backward(x, weight, grad, eps, params);
                register_tracked::<B, 3>(
                    grads,
                    [
                        (node_x.map(|n| n.id), dx),
                        (node_w.map(|n| n.id), dw),
                        (node_b.map(|n| n.id), db),
                    ],
                );
            }
        }

        let (x, node_x) = x.into_parts();
        let (weight, node_w) = weight.into_parts();
        let (bias, node_b) = bias.into_parts();
        let out = B::fused_layer_norm(x.clone(), weight.clone(), bias, eps);
        match LayerNormBackward
            .prepare::<C>([node_x, node_w, node_b])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, weight, eps), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    /// Not differentiable itself (the backward pass of the op above, run outside the graph).
    fn fused_layer_norm_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        eps: f64,
        params: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (dx, dw, db) = B::fused_layer_norm_backward(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
            eps,
            params,
        );
        (
            FloatTensor::<Self>::new(dx),
            FloatTensor::<Self>::new(dw),
            FloatTensor::<Self>::new(db),
        )
    }
}

/// The fused op on tensors (f32, on a flex or, with the cubecl kernels, a cubecl device;
/// `weight`, `bias`: the last dimension).
pub fn fused_layer_norm<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<1>,
    bias: Tensor<1>,
    eps: f64,
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedLayerNormBackend>::fused_layer_norm(
        x.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        eps,
    ))
}
