//! A gather of token rows, `y[b, j, :] = x[b, map[j], :]` (zeros where `map[j]` is none), as
//! one differentiable op: Swin's padding, cyclic shift and window partition in one copy, and
//! their inverse in another.
//!
//! Composed from tensor ops, a shifted block's partition pads, rolls (a slice and a cat per
//! axis) and permutes, and the reverse does it all again: about seven full copies of the
//! activations forward and as many backward. Each of these is a permutation of token rows
//! (plus zero rows for the padding), so one gather does it; its backward pass is the gather
//! with the inverse map, since every source row is read at most once.

use std::sync::Arc;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{Values, tensor, zeroed};

/// Marks an output row that is zero (padding).
pub(crate) const NONE: u32 = u32::MAX;

/// Which input row each output row copies, and its inverse.
#[derive(Debug, Clone, PartialEq)]
pub struct RowMap {
    /// Output row `j` copies input row `forward[j]`, or is zero if `NONE`.
    forward: Arc<Vec<u32>>,
    /// Input row `i` went to output row `inverse[i]`, or nowhere if `NONE`.
    inverse: Arc<Vec<u32>>,
}

impl RowMap {
    /// From `forward` over `rows_in` input rows; panics if an input row is used twice or
    /// an index is out of range (a bug in the caller).
    pub fn new(forward: Vec<u32>, rows_in: usize) -> Self {
        let mut inverse = vec![NONE; rows_in];
        for (j, &i) in forward.iter().enumerate() {
            if i != NONE {
                assert!((i as usize) < rows_in, "row map: row {i} of {rows_in}");
                assert_eq!(inverse[i as usize], NONE, "row map: row {i} used twice");
                inverse[i as usize] = j as u32;
            }
        }
        Self {
            forward: Arc::new(forward),
            inverse: Arc::new(inverse),
        }
    }

    /// The map that undoes this one (on the rows this one keeps).
    pub fn inverted(&self) -> Self {
        Self {
            forward: self.inverse.clone(),
            inverse: self.forward.clone(),
        }
    }

    /// Which input row each output row copies (`u32::MAX`: none, a zero row).
    #[cfg_attr(not(feature = "cube-kernels"), allow(dead_code))]
    pub(crate) fn sources(&self) -> &[u32] {
        &self.forward
    }

    pub fn rows_out(&self) -> usize {
        self.forward.len()
    }

    pub fn rows_in(&self) -> usize {
        self.inverse.len()
    }

    /// Swin's window partition of an `h×w` token grid: zero-padded to `hp×wp` (multiples of
    /// `window`), rolled by `−shift` on both axes, cut into windows (row-major), each window's
    /// tokens row-major. [`RowMap::inverted`] is the window reverse: windows back to the
    /// padded grid, rolled by `+shift`, cropped to `h×w`.
    pub fn window_partition(h: usize, w: usize, window: usize, shift: usize) -> Self {
        let hp = h.div_ceil(window) * window;
        let wp = w.div_ceil(window) * window;
        let (nh, nw) = (hp / window, wp / window);
        let mut forward = Vec::with_capacity(hp * wp);
        for wi in 0..nh {
            for wj in 0..nw {
                for pi in 0..window {
                    for pj in 0..window {
                        let r = (wi * window + pi + shift) % hp;
                        let c = (wj * window + pj + shift) % wp;
                        forward.push(if r < h && c < w {
                            (r * w + c) as u32
                        } else {
                            NONE
                        });
                    }
                }
            }
        }
        Self::new(forward, h * w)
    }
}

/// `x` `(B, rows_in, C)` → `(B, rows_out, C)` by `map`. Implemented for burn-flex (here)
/// and for cubecl (with the `cube-kernels` feature); other backends compose the same
/// permutation from pad, roll and permute.
#[backend_extension(
    Autodiff,
    Flex,
    Cube: cfg(feature = "cube-kernels"),
    Fusion: cfg(feature = "cube-kernels")
)]
pub trait GatherRowsBackend: Backend {
    #[fusion(meta = |x, map| burn::backend::fusion::custom::TensorSpec::new(
        [x.shape[0], map.rows_out(), x.shape[2]].into(),
        x.dtype,
    ))]
    fn gather_rows(x: FloatTensor<Self>, map: RowMap) -> FloatTensor<Self>;
}

fn gather(x: &FlexTensor, forward: &[u32]) -> FlexTensor {
    let x = Values::of(x);
    let dims = x.dims();
    assert_eq!(dims.len(), 3, "gather_rows: x is (B, rows, C)");
    let (b, rows_in, c) = (dims[0], dims[1], dims[2]);
    let src = x.as_slice();
    let rows_out = forward.len();
    let mut out = zeroed(b * rows_out * c);
    out.par_chunks_mut(rows_out * c)
        .zip(src.par_chunks(rows_in * c))
        .for_each(|(o, s)| {
            for (dst, &i) in o.chunks_exact_mut(c).zip(forward) {
                if i != NONE {
                    let i = i as usize;
                    dst.copy_from_slice(&s[i * c..(i + 1) * c]);
                }
            }
        });
    tensor(out, vec![b, rows_out, c])
}

impl GatherRowsBackend for Flex {
    fn gather_rows(x: FloatTensor<Self>, map: RowMap) -> FloatTensor<Self> {
        gather(&x, &map.forward)
    }
}

impl<B: GatherRowsBackend, C: CheckpointStrategy> GatherRowsBackend for Autodiff<B, C> {
    fn gather_rows(x: FloatTensor<Self>, map: RowMap) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct GatherBackward;

        impl<B: GatherRowsBackend> Backward<B, 1> for GatherBackward {
            type State = RowMap;

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let inverse = ops.state.inverted();
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::gather_rows(grad, inverse)
                });
            }
        }

        let (x, node) = x.into_parts();
        let out = B::gather_rows(x, map.clone());
        match GatherBackward
            .prepare::<C>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(map, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// The fused op on a tensor (f32, on a flex or, with the cubecl kernels, a cubecl device).
pub fn gather_rows(x: Tensor<3>, map: RowMap) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as GatherRowsBackend>::gather_rows(
        x.into_dispatch(),
        map,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unshifted_partition_of_a_window_multiple_is_the_window_order() {
        let map = RowMap::window_partition(4, 4, 2, 0);
        assert_eq!(
            *map.forward,
            vec![0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
        );
        assert_eq!(map.inverted().inverted(), map);
    }

    #[test]
    fn padding_rows_are_none_and_the_inverse_drops_them() {
        // 3×3 grid, window 2: padded to 4×4, shifted by 1.
        let map = RowMap::window_partition(3, 3, 2, 1);
        assert_eq!(map.rows_out(), 16);
        assert_eq!(map.rows_in(), 9);
        // First window: padded rows/cols 0..2 rolled by −1 → source rows/cols 1..3.
        assert_eq!(map.forward[..4], [4, 5, 7, 8]);
        let kept = map.forward.iter().filter(|&&i| i != NONE).count();
        assert_eq!(kept, 9);
        let inv = map.inverted();
        for i in 0..9u32 {
            assert_eq!(map.forward[inv.forward[i as usize] as usize], i);
        }
    }
}
