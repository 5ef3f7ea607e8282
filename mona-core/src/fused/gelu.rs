//! The exact GELU, optionally followed by inverted dropout, as one differentiable op.
//!
//! Composed from tensor ops, `dropout(gelu(x))` is about ten element-wise passes forward and
//! more backward, keeps three full-size tensors for the backward pass and draws one random
//! float per element from the process-wide (scalar ChaCha) stream. Fused, it is one parallel
//! pass each way and keeps only `x`: the dropout mask is a counter-based hash of a per-call
//! seed and the element's index, recomputed in the backward pass.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{CHUNK, Values, tensor, zeroed};
use super::math;
use super::simd::multiversion;
use crate::random::{Draw, keep_threshold};

/// Which elements an inverted dropout keeps, and by how much it scales them: element `i`
/// is kept by the draw's hash of its whole-batch index (see [`crate::random`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DropMask {
    pub draw: Draw,
    /// The keep probability `1 − p`, in (0, 1].
    pub keep: f32,
}

impl DropMask {
    /// A mask for dropout probability `p` on a tensor of `numel` elements: the next draw of
    /// the thread's [`crate::random::DrawScope`] (or of the device's random stream).
    pub fn draw(p: f64, numel: usize, device: &burn::tensor::Device) -> Self {
        Self {
            draw: Draw::next(numel, device),
            keep: (1.0 - p) as f32,
        }
    }
}

/// `gelu(x)`, then the mask's dropout, as a backend operation, and its input gradient.
/// Implemented for burn-flex (here) and for cubecl (with the `cube-kernels` feature);
/// other backends take the composed path of [`crate::nn::gelu`].
#[backend_extension(
    Autodiff,
    Flex,
    Cube: cfg(feature = "cube-kernels"),
    Fusion: cfg(feature = "cube-kernels")
)]
pub trait FusedGeluBackend: Backend {
    #[fusion(dtype = x, shape = x)]
    fn fused_gelu(x: FloatTensor<Self>, mask: Option<DropMask>) -> FloatTensor<Self>;

    /// `grad · d/dx dropout(gelu(x))`, with the same mask as the forward pass.
    #[fusion(dtype = x, shape = x)]
    fn fused_gelu_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mask: Option<DropMask>,
    ) -> FloatTensor<Self>;
}

multiversion! {
    fn gelu_chunk(x: &[f32], out: &mut [f32], mask: Option<DropMask>, offset: usize) {
        match mask {
            None => {
                for (o, v) in out.iter_mut().zip(x) {
                    *o = math::gelu(*v);
                }
            }
            Some(m) => {
                let threshold = keep_threshold(m.keep as f64);
                for (i, (o, v)) in out.iter_mut().zip(x).enumerate() {
                    let kept = m.draw.kept(offset + i, threshold);
                    let y = math::gelu(*v) / m.keep;
                    *o = if kept { y } else { 0.0 };
                }
            }
        }
    }
}

multiversion! {
    fn gelu_backward_chunk(
        x: &[f32],
        grad: &[f32],
        out: &mut [f32],
        mask: Option<DropMask>,
        offset: usize,
    ) {
        match mask {
            None => {
                for ((o, v), g) in out.iter_mut().zip(x).zip(grad) {
                    *o = *g * math::gelu_derivative(*v);
                }
            }
            Some(m) => {
                let threshold = keep_threshold(m.keep as f64);
                for (i, ((o, v), g)) in out.iter_mut().zip(x).zip(grad).enumerate() {
                    let kept = m.draw.kept(offset + i, threshold);
                    let y = (*g / m.keep) * math::gelu_derivative(*v);
                    *o = if kept { y } else { 0.0 };
                }
            }
        }
    }
}

fn gelu_forward(x: &FlexTensor, mask: Option<DropMask>) -> FlexTensor {
    let x = Values::of(x);
    let src = x.as_slice();
    let mut out = zeroed(src.len());
    out.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(k, (o, s))| gelu_chunk(s, o, mask, k * CHUNK));
    tensor(out, x.dims())
}

fn gelu_backward(x: &FlexTensor, grad: &FlexTensor, mask: Option<DropMask>) -> FlexTensor {
    let (x, grad) = (Values::of(x), Values::of(grad));
    let (src, g) = (x.as_slice(), grad.as_slice());
    let mut out = zeroed(src.len());
    out.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK).zip(g.par_chunks(CHUNK)))
        .enumerate()
        .for_each(|(k, (o, (s, g)))| gelu_backward_chunk(s, g, o, mask, k * CHUNK));
    tensor(out, x.dims())
}

impl FusedGeluBackend for Flex {
    fn fused_gelu(x: FloatTensor<Self>, mask: Option<DropMask>) -> FloatTensor<Self> {
        gelu_forward(&x, mask)
    }

    fn fused_gelu_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mask: Option<DropMask>,
    ) -> FloatTensor<Self> {
        gelu_backward(&x, &grad, mask)
    }
}

impl<B: FusedGeluBackend, C: CheckpointStrategy> FusedGeluBackend for Autodiff<B, C> {
    fn fused_gelu(x: FloatTensor<Self>, mask: Option<DropMask>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GeluBackward;

        impl<B: FusedGeluBackend> Backward<B, 1> for GeluBackward {
            type State = (FloatTensor<B>, Option<DropMask>);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let (x, mask) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::fused_gelu_backward(x, grad, mask)
                });
            }
        }

        let (primitive, node) = x.into_parts();
        match GeluBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::fused_gelu(primitive.clone(), mask);
                prep.finish((primitive, mask), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fused_gelu(primitive, mask)),
        }
    }

    /// Not differentiable itself (the backward pass of the op above, run outside the graph).
    fn fused_gelu_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        mask: Option<DropMask>,
    ) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::fused_gelu_backward(
            x.into_primitive(),
            grad.into_primitive(),
            mask,
        ))
    }
}

/// The fused op on a tensor (f32, on a flex or, with the cubecl kernels, a cubecl device).
pub fn fused_gelu<const D: usize>(x: Tensor<D>, mask: Option<DropMask>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as FusedGeluBackend>::fused_gelu(
        x.into_dispatch(),
        mask,
    ))
}
