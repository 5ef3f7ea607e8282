//! Window self-attention with relative position bias (and the shifted-window mask), from the
//! `qkv` projection to the heads' concatenated output, as one differentiable op.
//!
//! Composed, a block's attention is a reshape and permute of `qkv`, a scaling of `q`, a
//! batched matrix product per window and head (tiny, 49×32×49, where a GEMM call costs more
//! in set-up than in arithmetic), the bias and mask additions, a softmax of several passes,
//! a second batched product and a permute back: about a dozen passes over the
//! `(windows, heads, N, N)` scores, several of which autodiff keeps alive for the backward
//! pass. Fused, each window's heads are computed in cache, one parallel task per window,
//! and the backward pass recomputes the scores from `qkv` instead of keeping them.
//!
//! Per window and head, with `q` already scaled: `S = q·kᵀ + bias (+ mask)`,
//! `P = softmax(S)`, `O = P·v`; backward: `dV = Pᵀ·dO`, `dP = dO·vᵀ`,
//! `dS = P ⊙ (dP − rowsum(P ⊙ dP))`, `dq = scale·dS·k`, `dk = dSᵀ·q`, `dbias = Σ_windows dS`.
//! Under autodiff the forward pass keeps `P` (`windows × heads × N²` floats, a few MiB per
//! block) rather than `qkv`-derived intermediates, so the backward pass does no softmax.

use std::sync::Arc;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::flex::{Values, sum_partials, tensor, zeroed};
use super::math;
use super::simd::multiversion;

/// Windows per parallel task of the backward pass (whose bias-gradient partial sums are
/// added per task, then over the tasks in order: the same result on every machine).
const WINDOWS: usize = 4;

/// `softmax(q·kᵀ·scale + bias + mask)·v` per window and head. `qkv`: `(B·nW, N, 3C)` with
/// channels `(3, heads, C/heads)`; `bias`: `(heads, N, N)`; `mask`: `(nW, N, N)`, window `w`
/// taking `mask[w mod nW]`, is added only when `masked` (unshifted blocks pass any tensor,
/// as burn's extension macro takes no optional tensor). Returns `(B·nW, N, C)`, heads concatenated. Implemented for
/// burn-flex; other backends compose it from matmul and softmax.
#[backend_extension(Autodiff, Flex)]
pub trait WindowAttentionBackend: Backend {
    fn window_attention(
        qkv: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        masked: bool,
        heads: usize,
        scale: f64,
    ) -> FloatTensor<Self>;
}

/// The sizes of one call.
#[derive(Debug, Clone, Copy)]
struct Shape {
    windows: usize,
    n: usize,
    c: usize,
    heads: usize,
    scale: f32,
}

impl Shape {
    fn of(qkv: &[usize], bias: &[usize], heads: usize, scale: f64) -> Self {
        assert_eq!(qkv.len(), 3, "window_attention: qkv is (windows, N, 3C)");
        let (windows, n, c3) = (qkv[0], qkv[1], qkv[2]);
        assert!(
            c3 % (3 * heads) == 0,
            "window_attention: {c3} qkv channels for {heads} heads"
        );
        assert_eq!(bias, [heads, n, n], "window_attention: bias shape");
        let c = c3 / 3;
        assert!(
            c / heads == HEAD_DIM && n <= MAX_TOKENS,
            "window_attention: head width {} and {n} tokens (the kernel takes {HEAD_DIM} and at most {MAX_TOKENS})",
            c / heads
        );
        Self {
            windows,
            n,
            c,
            heads,
            scale: scale as f32,
        }
    }
}

/// Head width the kernels are written for (every Swin model's: `C / heads = 32`).
pub const HEAD_DIM: usize = 32;
/// The most tokens per window the kernels take (window 7: 49; window 8: 64).
pub const MAX_TOKENS: usize = 64;

/// Accumulators are fixed-size local arrays, so the compiler keeps them in vector
/// registers instead of adding into memory (whose store-to-load latency would bound the
/// loop): rows of `N` scores are `MAX_TOKENS` wide (zero past `N`), rows of a head `D` wide.
type Row = [f32; MAX_TOKENS];
type Head = [f32; HEAD_DIM];

#[inline(always)]
fn head(slice: &[f32]) -> &Head {
    slice[..HEAD_DIM].try_into().expect("a head row")
}

/// `Σ_j weight(j)·row(j)` over `j < n`, in four interleaved partial sums (independent
/// dependency chains, so the adds are not bound by their latency), added at the end.
#[inline(always)]
fn weighted_rows<'a>(
    n: usize,
    weight: impl Fn(usize) -> f32,
    row: impl Fn(usize) -> &'a Head,
) -> Head {
    let mut acc = [[0f32; HEAD_DIM]; 4];
    let mut j = 0;
    while j + 4 <= n {
        for (u, acc) in acc.iter_mut().enumerate() {
            let w = weight(j + u);
            for (a, v) in acc.iter_mut().zip(row(j + u)) {
                *a += w * *v;
            }
        }
        j += 4;
    }
    for j in j..n {
        let w = weight(j);
        for (a, v) in acc[0].iter_mut().zip(row(j)) {
            *a += w * *v;
        }
    }
    let mut total = acc[0];
    for part in &acc[1..] {
        for (t, v) in total.iter_mut().zip(part) {
            *t += *v;
        }
    }
    total
}

/// Per-head scratch of one task.
struct Scratch {
    /// Scaled queries, `N × D`.
    qs: Vec<Head>,
    /// Keys and values transposed, `D × MAX_TOKENS` (zero past `N`).
    kt: Vec<Row>,
    vt: Vec<Row>,
    /// Probabilities and their gradient, `N × MAX_TOKENS`.
    p: Vec<Row>,
    dp: Vec<Row>,
}

impl Scratch {
    fn new(n: usize) -> Self {
        Self {
            qs: vec![[0.0; HEAD_DIM]; n],
            kt: vec![[0.0; MAX_TOKENS]; HEAD_DIM],
            vt: vec![[0.0; MAX_TOKENS]; HEAD_DIM],
            p: vec![[0.0; MAX_TOKENS]; n],
            dp: vec![[0.0; MAX_TOKENS]; n],
        }
    }
}

/// `P = softmax((q·scale)·kᵀ + bias (+ mask))` into `sc.p`, with `sc.qs` and `sc.kt` filled
/// on the way (the backward pass reuses them).
#[inline(always)]
fn probabilities(
    win: &[f32],
    s: Shape,
    head_index: usize,
    bias: &[f32],
    mask: Option<&[f32]>,
    sc: &mut Scratch,
) {
    let (n, c3) = (s.n, 3 * s.c);
    let (q_off, k_off) = (head_index * HEAD_DIM, s.c + head_index * HEAD_DIM);
    for i in 0..n {
        let row = &win[i * c3..(i + 1) * c3];
        let q = head(&row[q_off..]);
        for (dst, v) in sc.qs[i].iter_mut().zip(q) {
            *dst = *v * s.scale;
        }
        for (dd, v) in head(&row[k_off..]).iter().enumerate() {
            sc.kt[dd][i] = *v;
        }
    }
    for i in 0..n {
        let mut acc: Row = [0.0; MAX_TOKENS];
        for dd in 0..HEAD_DIM {
            let qv = sc.qs[i][dd];
            for (a, k) in acc.iter_mut().zip(&sc.kt[dd]) {
                *a += qv * *k;
            }
        }
        for (a, b) in acc.iter_mut().zip(&bias[i * n..(i + 1) * n]) {
            *a += *b;
        }
        if let Some(m) = mask {
            for (a, mv) in acc.iter_mut().zip(&m[i * n..(i + 1) * n]) {
                *a += *mv;
            }
        }
        let mut max = f32::NEG_INFINITY;
        for v in &acc[..n] {
            max = if *v > max { *v } else { max };
        }
        for v in acc[..n].iter_mut() {
            *v = math::exp(*v - max);
        }
        for v in acc[n..].iter_mut() {
            *v = 0.0;
        }
        let sum = super::simd::lane_sum(&acc);
        for v in acc[..n].iter_mut() {
            *v /= sum;
        }
        sc.p[i] = acc;
    }
}

multiversion! {
    /// Every head of one window: `out` is the window's `(N, C)` output rows; the
    /// probabilities go to `probs` (`(heads, N, N)`) unless it is empty.
    fn attend_window(win: &[f32], bias: &[f32], mask: Option<&[f32]>, out: &mut [f32], probs: &mut [f32], s: Shape) {
        let (n, c3) = (s.n, 3 * s.c);
        let mut sc = Scratch::new(n);
        for h in 0..s.heads {
            probabilities(win, s, h, &bias[h * n * n..(h + 1) * n * n], mask, &mut sc);
            if !probs.is_empty() {
                for (i, row) in probs[h * n * n..(h + 1) * n * n].chunks_exact_mut(n).enumerate() {
                    row.copy_from_slice(&sc.p[i][..n]);
                }
            }
            let v_off = 2 * s.c + h * HEAD_DIM;
            for i in 0..n {
                let acc = weighted_rows(n, |j| sc.p[i][j], |j| head(&win[j * c3 + v_off..]));
                out[i * s.c + h * HEAD_DIM..i * s.c + (h + 1) * HEAD_DIM].copy_from_slice(&acc);
            }
        }
    }
}

multiversion! {
    /// The gradients of one window: its `(N, 3C)` rows of `dqkv` from its `(N, C)` rows of
    /// `dout` and the forward pass's probabilities `probs` (`(heads, N, N)`), and its `dS`
    /// added to `dbias` (`(heads, N, N)`) when `dbias` is not empty.
    fn attend_window_backward(
        win: &[f32],
        probs: &[f32],
        dout: &[f32],
        dwin: &mut [f32],
        dbias: &mut [f32],
        s: Shape,
    ) {
        let (n, c3) = (s.n, 3 * s.c);
        let mut sc = Scratch::new(n);
        for h in 0..s.heads {
            let (q_off, k_off, v_off) = (h * HEAD_DIM, s.c + h * HEAD_DIM, 2 * s.c + h * HEAD_DIM);
            let o_off = h * HEAD_DIM;
            for (i, row) in probs[h * n * n..(h + 1) * n * n].chunks_exact(n).enumerate() {
                sc.p[i][..n].copy_from_slice(row);
                for (dst, q) in sc.qs[i].iter_mut().zip(head(&win[i * c3 + q_off..])) {
                    *dst = *q * s.scale;
                }
            }
            for j in 0..n {
                for (dd, v) in head(&win[j * c3 + v_off..]).iter().enumerate() {
                    sc.vt[dd][j] = *v;
                }
            }
            // dV = Pᵀ·dO.
            for j in 0..n {
                let acc = weighted_rows(n, |i| sc.p[i][j], |i| head(&dout[i * s.c + o_off..]));
                dwin[j * c3 + v_off..j * c3 + v_off + HEAD_DIM].copy_from_slice(&acc);
            }
            // dP = dO·vᵀ, then dS = P ⊙ (dP − rowsum(P ⊙ dP)).
            for i in 0..n {
                let mut acc: Row = [0.0; MAX_TOKENS];
                for (dd, g) in head(&dout[i * s.c + o_off..]).iter().enumerate() {
                    for (a, v) in acc.iter_mut().zip(&sc.vt[dd]) {
                        *a += *g * *v;
                    }
                }
                let prow = &sc.p[i];
                let mut lanes: Row = [0.0; MAX_TOKENS];
                for ((l, a), pv) in lanes.iter_mut().zip(&acc).zip(prow) {
                    *l = *a * *pv;
                }
                let dot = super::simd::lane_sum(&lanes);
                for (a, pv) in acc.iter_mut().zip(prow) {
                    *a = *pv * (*a - dot);
                }
                sc.dp[i] = acc;
            }
            if !dbias.is_empty() {
                let db = &mut dbias[h * n * n..(h + 1) * n * n];
                for (i, row) in db.chunks_exact_mut(n).enumerate() {
                    for (a, ds) in row.iter_mut().zip(&sc.dp[i]) {
                        *a += *ds;
                    }
                }
            }
            // dq = scale·dS·k.
            for i in 0..n {
                let acc = weighted_rows(n, |j| sc.dp[i][j], |j| head(&win[j * c3 + k_off..]));
                for (d, a) in dwin[i * c3 + q_off..i * c3 + q_off + HEAD_DIM].iter_mut().zip(&acc) {
                    *d = *a * s.scale;
                }
            }
            // dk = dSᵀ·qs.
            for j in 0..n {
                let acc = weighted_rows(n, |i| sc.dp[i][j], |i| &sc.qs[i]);
                dwin[j * c3 + k_off..j * c3 + k_off + HEAD_DIM].copy_from_slice(&acc);
            }
        }
    }
}

fn mask_of(mask: Option<&[f32]>, window: usize, n: usize) -> Option<&[f32]> {
    mask.map(|m| {
        let nw = m.len() / (n * n);
        let w = window % nw;
        &m[w * n * n..(w + 1) * n * n]
    })
}

/// The output, and the probabilities `(windows, heads, N, N)` when `keep` (for the
/// backward pass: a few MiB, against recomputing the scores and their softmax).
fn forward(
    qkv: &FlexTensor,
    bias: &FlexTensor,
    mask: Option<&FlexTensor>,
    heads: usize,
    scale: f64,
    keep: bool,
) -> (FlexTensor, Option<Vec<f32>>) {
    let (qkv, bias) = (Values::of(qkv), Values::of(bias));
    let mask = mask.map(Values::of);
    let s = Shape::of(&qkv.dims(), &bias.dims(), heads, scale);
    let (src, b) = (qkv.as_slice(), bias.as_slice());
    let m = mask.as_ref().map(|m| m.as_slice());
    let mut out = zeroed(s.windows * s.n * s.c);
    let per_window = if keep { s.heads * s.n * s.n } else { 0 };
    let mut probs = zeroed(s.windows * per_window);
    let windows = out
        .par_chunks_mut(s.n * s.c)
        .zip(src.par_chunks(s.n * 3 * s.c));
    if keep {
        windows
            .zip(probs.par_chunks_mut(per_window))
            .enumerate()
            .for_each(|(w, ((o, win), p))| attend_window(win, b, mask_of(m, w, s.n), o, p, s));
    } else {
        windows
            .enumerate()
            .for_each(|(w, (o, win))| attend_window(win, b, mask_of(m, w, s.n), o, &mut [], s));
    }
    (
        tensor(out, vec![s.windows, s.n, s.c]),
        keep.then_some(probs),
    )
}

/// `(dqkv, dbias if asked for)`.
fn backward(
    qkv: &FlexTensor,
    bias_dims: &[usize],
    probs: &[f32],
    grad: &FlexTensor,
    heads: usize,
    scale: f64,
    want_bias: bool,
) -> (FlexTensor, Option<FlexTensor>) {
    let (qkv, grad) = (Values::of(qkv), Values::of(grad));
    let s = Shape::of(&qkv.dims(), bias_dims, heads, scale);
    let (src, g) = (qkv.as_slice(), grad.as_slice());
    let per_window = s.heads * s.n * s.n;
    let win_in = s.n * 3 * s.c;
    let win_out = s.n * s.c;
    let bias_len = if want_bias { s.heads * s.n * s.n } else { 0 };
    let mut dqkv = zeroed(src.len());
    let partials: Vec<Vec<f32>> = dqkv
        .par_chunks_mut(WINDOWS * win_in)
        .zip(
            src.par_chunks(WINDOWS * win_in)
                .zip(g.par_chunks(WINDOWS * win_out)),
        )
        .zip(probs.par_chunks(WINDOWS * per_window))
        .map(|((dwins, (wins, gs)), ps)| {
            let mut dbias = vec![0f32; bias_len];
            for (((dwin, win), go), p) in dwins
                .chunks_mut(win_in)
                .zip(wins.chunks(win_in))
                .zip(gs.chunks(win_out))
                .zip(ps.chunks(per_window))
            {
                attend_window_backward(win, p, go, dwin, &mut dbias, s);
            }
            dbias
        })
        .collect();
    let dqkv = tensor(dqkv, qkv.dims());
    if !want_bias {
        return (dqkv, None);
    }
    let total = sum_partials(&partials, bias_len);
    (dqkv, Some(tensor(total, bias_dims.to_vec())))
}

impl WindowAttentionBackend for Flex {
    fn window_attention(
        qkv: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        masked: bool,
        heads: usize,
        scale: f64,
    ) -> FloatTensor<Self> {
        forward(&qkv, &bias, masked.then_some(&mask), heads, scale, false).0
    }
}

impl<C: CheckpointStrategy> WindowAttentionBackend for Autodiff<Flex, C> {
    fn window_attention(
        qkv: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        mask: FloatTensor<Self>,
        masked: bool,
        heads: usize,
        scale: f64,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct AttentionBackward;

        impl Backward<Flex, 2> for AttentionBackward {
            /// `qkv`, the bias's shape, the probabilities, heads, scale.
            type State = (FlexTensor, Vec<usize>, Arc<Vec<f32>>, usize, f64);

            fn backward(
                self,
                ops: Ops<Self::State, 2>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_qkv, node_bias] = ops.parents;
                let grad = grads.consume::<Flex>(&ops.node);
                let (qkv, bias_dims, probs, heads, scale) = ops.state;
                let (dqkv, dbias) = backward(
                    &qkv,
                    &bias_dims,
                    &probs,
                    &grad,
                    heads,
                    scale,
                    node_bias.is_some(),
                );
                if let Some(node) = node_qkv {
                    grads.register::<Flex>(node.id, dqkv);
                }
                if let (Some(node), Some(dbias)) = (node_bias, dbias) {
                    grads.register::<Flex>(node.id, dbias);
                }
            }
        }

        let (qkv, node_qkv) = qkv.into_parts();
        let (bias, node_bias) = bias.into_parts();
        let mask = masked.then(|| mask.into_primitive());
        match AttentionBackward
            .prepare::<C>([node_qkv, node_bias])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, probs) = forward(&qkv, &bias, mask.as_ref(), heads, scale, true);
                let probs = Arc::new(probs.expect("kept"));
                let bias_dims = bias.layout().shape().to_vec();
                prep.finish((qkv, bias_dims, probs, heads, scale), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(&qkv, &bias, mask.as_ref(), heads, scale, false).0)
            }
        }
    }
}

/// The fused op on tensors (f32, on a flex device).
pub fn window_attention(
    qkv: Tensor<3>,
    bias: Tensor<3>,
    mask: Option<Tensor<3>>,
    heads: usize,
    scale: f64,
) -> Tensor<3> {
    let masked = mask.is_some();
    let mask = mask.unwrap_or_else(|| bias.clone());
    Tensor::from_dispatch(<Dispatch as WindowAttentionBackend>::window_attention(
        qkv.into_dispatch(),
        bias.into_dispatch(),
        mask.into_dispatch(),
        masked,
        heads,
        scale,
    ))
}
