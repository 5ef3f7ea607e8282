//! `y = x·Wᵀ + b` (PyTorch's `F.linear`, the weight stored `(out, in)`) as one
//! differentiable op whose every pass runs on all threads.
//!
//! burn-flex's `linear` is a matmul on the transposed weight view, then a bias add. Three
//! of its steps run on the calling thread while the worker threads wait: gemm packs the
//! strided weight before its threads start (for Swin-T about a third of an inference
//! step's serial time), the output buffer is zero-filled and then copied once more to
//! align it, and the bias is added by a single-threaded pass.
//!
//! Here every product is cut into fixed tiles of the output (up to `ROW_TILE` rows by
//! `COL_TILE` columns) that rayon's threads compute independently: a task calls gemm on its
//! own thread for its tile, packing only the weight columns it uses, then adds the bias
//! while the tile is still in cache. The tiles depend on
//! the shapes alone, never on the thread count, so the results do not either.
//!
//! The backward pass keeps `x` and `W`: `dx = dy·W`, `dW = dyᵀ·x` (only when the weight is
//! trained; Mona's frozen backbone skips it) and `db = Σ dy` over rows, summed per task of
//! `SUM_ROWS` rows and then over the tasks in order.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use gemm::Parallelism;
use rayon::prelude::*;

use super::flex::{Values, sum_partials, tensor};

/// Output rows per tile: large enough that a tile's gemm call amortises its set-up.
const ROW_TILE: usize = 1024;
/// Output columns per tile: one row of gemm's widest f32 microkernel (4 × 16 lanes).
const COL_TILE: usize = 64;
/// Rows of the weight gradient per tile: its inner dimension is the batch's token count, so
/// smaller tiles still carry much work, and more of them keep every thread busy.
const GRAD_ROW_TILE: usize = 128;
/// Rows per parallel task of the bias gradient.
const SUM_ROWS: usize = 256;

/// `x·Wᵀ + b` over the last dimension of `x` (`(…, in)`), with `weight` `(out, in)` and
/// `bias` `(out)`. Implemented for burn-flex; other backends take burn's `linear`.
#[backend_extension(Autodiff, Flex)]
pub trait FusedLinearBackend: Backend {
    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    fn fused_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// A matrix operand in a buffer: element `(r, c)` at `ptr + r·rs + c·cs`.
#[derive(Clone, Copy)]
struct View {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl View {
    /// A row-major matrix with rows of `row_len` elements.
    fn row_major(values: &Values, row_len: usize) -> Self {
        Self {
            ptr: values.as_slice().as_ptr(),
            rs: row_len as isize,
            cs: 1,
        }
    }

    /// The transpose of a row-major matrix with rows of `row_len` elements.
    fn transposed(values: &Values, row_len: usize) -> Self {
        Self {
            ptr: values.as_slice().as_ptr(),
            rs: 1,
            cs: row_len as isize,
        }
    }

    fn at(self, r: usize, c: usize) -> *const f32 {
        self.ptr
            .wrapping_offset(r as isize * self.rs + c as isize * self.cs)
    }
}

// SAFETY: a `View` is only read, by tasks that run while the buffer it points into is
// borrowed by the caller of `tiled_gemm`.
unsafe impl Send for View {}
unsafe impl Sync for View {}

/// The destination buffer, written by tasks at disjoint tiles.
#[derive(Clone, Copy)]
struct Dst(*mut f32);

impl Dst {
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

// SAFETY: every task writes its own tile only; the buffer outlives the parallel section.
unsafe impl Send for Dst {}
unsafe impl Sync for Dst {}

/// `lhs·rhs (+ bias on every row)` as a new row-major `(m, n)` buffer; `lhs` is `(m, k)`
/// and `rhs` `(k, n)`, both readable for the whole call.
fn tiled_gemm(
    (m, n, k): (usize, usize, usize),
    lhs: View,
    rhs: View,
    bias: Option<&[f32]>,
    row_tile: usize,
) -> Vec<f32> {
    let mut out = Vec::<f32>::with_capacity(m * n);
    let dst = Dst(out.as_mut_ptr());
    let col_tiles = n.div_ceil(COL_TILE);
    let tiles = m.div_ceil(row_tile) * col_tiles;
    (0..tiles).into_par_iter().for_each(|t| {
        let (r0, c0) = ((t / col_tiles) * row_tile, (t % col_tiles) * COL_TILE);
        let (rows, cols) = (row_tile.min(m - r0), COL_TILE.min(n - c0));
        let tile = dst.at(r0 * n + c0);
        // SAFETY: the tile's rows lie inside the allocation of `m·n` floats and no other
        // task touches them. gemm writes every element of the tile (it does not read it);
        // the bias is added afterwards, while the tile is still in cache.
        unsafe {
            if k == 0 {
                for r in 0..rows {
                    std::ptr::write_bytes(tile.add(r * n), 0, cols);
                }
            } else {
                gemm::gemm(
                    rows,
                    cols,
                    k,
                    tile,
                    1,
                    n as isize,
                    false,
                    lhs.at(r0, 0),
                    lhs.cs,
                    lhs.rs,
                    rhs.at(0, c0),
                    rhs.cs,
                    rhs.rs,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            if let Some(b) = bias {
                let b = &b[c0..c0 + cols];
                for r in 0..rows {
                    let row = std::slice::from_raw_parts_mut(tile.add(r * n), cols);
                    for (y, v) in row.iter_mut().zip(b) {
                        *y += *v;
                    }
                }
            }
        }
    });
    // SAFETY: the tiles cover all `m·n` elements, and every task has written its tile.
    unsafe { out.set_len(m * n) };
    out
}

/// `(rows, columns)` of `x` seen as a matrix over its last dimension.
fn as_matrix(dims: &[usize]) -> (usize, usize) {
    let cols = *dims.last().expect("linear: x has at least one dimension");
    (dims.iter().product::<usize>() / cols.max(1), cols)
}

fn forward(x: &FlexTensor, weight: &FlexTensor, bias: Option<&FlexTensor>) -> FlexTensor {
    let (x, weight) = (Values::of(x), Values::of(weight));
    let bias = bias.map(Values::of);
    let mut dims = x.dims();
    let (rows, d_in) = as_matrix(&dims);
    let [d_out, w_in] = weight.dims()[..] else {
        panic!("linear: weight {:?} is not (out, in)", weight.dims());
    };
    assert_eq!(
        w_in,
        d_in,
        "linear: weight {:?} for x {dims:?}",
        weight.dims()
    );
    let b = bias.as_ref().map(Values::as_slice);
    if let Some(b) = b {
        assert_eq!(
            b.len(),
            d_out,
            "linear: bias of {} for {d_out} outputs",
            b.len()
        );
    }
    let (lhs, rhs) = (View::row_major(&x, d_in), View::transposed(&weight, d_in));
    let out = tiled_gemm((rows, d_out, d_in), lhs, rhs, b, ROW_TILE);
    *dims.last_mut().expect("checked above") = d_out;
    tensor(out, dims)
}

/// `dx = dy·W` (shaped as `x`).
fn input_grad(grad: &Values, weight: &Values, x_dims: Vec<usize>) -> FlexTensor {
    let (rows, d_out) = as_matrix(&grad.dims());
    let d_in = weight.dims()[1];
    let (lhs, rhs) = (View::row_major(grad, d_out), View::row_major(weight, d_in));
    tensor(
        tiled_gemm((rows, d_in, d_out), lhs, rhs, None, ROW_TILE),
        x_dims,
    )
}

/// `dW = dyᵀ·x`, `(out, in)`.
fn weight_grad(grad: &Values, x: &Values) -> FlexTensor {
    let (rows, d_out) = as_matrix(&grad.dims());
    let d_in = x.dims().last().copied().unwrap_or(0);
    let (lhs, rhs) = (View::transposed(grad, d_out), View::row_major(x, d_in));
    tensor(
        tiled_gemm((d_out, d_in, rows), lhs, rhs, None, GRAD_ROW_TILE),
        vec![d_out, d_in],
    )
}

/// `db = Σ dy` over all rows.
fn bias_grad(grad: &Values) -> FlexTensor {
    let (_, d_out) = as_matrix(&grad.dims());
    let partials: Vec<Vec<f32>> = grad
        .as_slice()
        .par_chunks(SUM_ROWS * d_out.max(1))
        .map(|rows| {
            let mut sum = vec![0f32; d_out];
            for row in rows.chunks_exact(d_out) {
                for (s, v) in sum.iter_mut().zip(row) {
                    *s += *v;
                }
            }
            sum
        })
        .collect();
    tensor(sum_partials(&partials, d_out), vec![d_out])
}

impl FusedLinearBackend for Flex {
    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        forward(&x, &weight, None)
    }

    fn fused_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        forward(&x, &weight, Some(&bias))
    }
}

/// The backward step, for `N = 2` (no bias) or `N = 3` parents `[x, weight, bias]`.
#[derive(Debug)]
struct LinearBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for LinearBackward<N> {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = Values::of(&grads.consume::<Flex>(&ops.node));
        let (x, weight) = ops.state;
        let node_id = |i: usize| ops.parents.get(i).and_then(|p| p.as_ref()).map(|n| n.id);
        if let Some(id) = node_id(0) {
            let dx = input_grad(&grad, &Values::of(&weight), x.layout().shape().to_vec());
            grads.register::<Flex>(id, dx);
        }
        if let Some(id) = node_id(1) {
            grads.register::<Flex>(id, weight_grad(&grad, &Values::of(&x)));
        }
        if let Some(id) = node_id(2) {
            grads.register::<Flex>(id, bias_grad(&grad));
        }
    }
}

/// The forward pass on autodiff tensors: `nodes` are those of `[x, weight]` or
/// `[x, weight, bias]`. `x` is kept in row order, so a strided input is copied once.
fn record<C: CheckpointStrategy, const N: usize>(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<&FlexTensor>,
    nodes: [NodeGuard; N],
) -> FloatTensor<Autodiff<Flex, C>> {
    let x = x.to_contiguous();
    let out = forward(&x, &weight, bias);
    match LinearBackward::<N>
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((x, weight), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

impl<C: CheckpointStrategy> FusedLinearBackend for Autodiff<Flex, C> {
    fn fused_linear(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let (x, node_x) = x.into_parts();
        let (weight, node_w) = weight.into_parts();
        record::<C, 2>(x, weight, None, [node_x, node_w])
    }

    fn fused_linear_bias(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (x, node_x) = x.into_parts();
        let (weight, node_w) = weight.into_parts();
        let (bias, node_b) = bias.into_parts();
        record::<C, 3>(x, weight, Some(&bias), [node_x, node_w, node_b])
    }
}

/// The fused op on tensors (f32, on a flex device): `x` `(…, in)`, `weight` `(out, in)`,
/// `bias` `(out)`.
pub fn fused_linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let (x, weight) = (x.into_dispatch(), weight.into_dispatch());
    Tensor::from_dispatch(match bias {
        None => <Dispatch as FusedLinearBackend>::fused_linear(x, weight),
        Some(b) => {
            <Dispatch as FusedLinearBackend>::fused_linear_bias(x, weight, b.into_dispatch())
        }
    })
}
