//! mmcv's `RoIAlign` (`pool_mode='avg'`), written with burn tensor ops so that the backward
//! pass (w.r.t. the feature map) exists on every backend without a custom kernel.
//!
//! Why this shape: the sample positions and bilinear weights depend only on the RoI boxes,
//! which mmdet detaches, so they are computed once on the host. mmcv's sampling is
//! *separable*: a sample's weight is `wy(y) · wx(x)` (its out-of-range rule, `y < −1 ∨ y > H ∨
//! x < −1 ∨ x > W ⇒ 0`, is a product of per-axis indicators, and the clamps act per axis), and
//! the `1 / (grid_h · grid_w)` average splits the same way. So each RoI's output is
//! `Ay · F[window] · Axᵀ`: a `(out_h, win_h)` row-weight matrix, the feature window the RoI
//! touches, and a `(out_w, win_w)` column-weight matrix. The window is fetched with one
//! `select` on the channel-last map (backward = scatter-add, on every backend) and the two
//! products are batched matmuls. Autodiff gives the exact adjoint of mmcv's backward kernel
//! (which scatters `g · w / count` into the same four corners).
//!
//! Geometry is computed in `f32` with mmcv's operation order, so the grid counts
//! (`ceil(roi_size / out_size)`) and sample positions are those of mmcv's float kernels.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// One RoI row of mmdet: `(batch_idx, x1, y1, x2, y2)` in input-image pixels.
pub type Roi = [f32; 5];

/// The `roi_layer` settings of mmcv's `RoIAlign`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoiAlignConfig {
    /// `(out_h, out_w)`.
    pub output_size: [usize; 2],
    /// Feature-map pixels per image pixel (`1 / stride`).
    pub spatial_scale: f32,
    /// Samples per bin along each axis; `0` = adaptive `ceil(roi_size / out_size)`.
    pub sampling_ratio: usize,
    /// Pixel-centre model (shift by −0.5); mmcv's default and what mmdet uses.
    pub aligned: bool,
}

impl RoiAlignConfig {
    /// mmdet's `RoIAlign(output_size, spatial_scale, sampling_ratio, aligned=True)`.
    pub fn new(output_size: usize, spatial_scale: f32, sampling_ratio: usize) -> Self {
        Self {
            output_size: [output_size, output_size],
            spatial_scale,
            sampling_ratio,
            aligned: true,
        }
    }
}

/// Why RoIAlign cannot run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RoiAlignError {
    #[error("roi_align: RoI {roi} has batch index {index} but the feature batch is {batch}")]
    BatchIndex {
        roi: usize,
        index: f32,
        batch: usize,
    },
    #[error("roi_align: output size {0:?} must be positive")]
    OutputSize([usize; 2]),
}

/// The per-axis taps of one RoI: for each output bin along the axis, `(pixel, weight)`
/// pairs with the `1 / grid` average folded into the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisTaps {
    pub bins: Vec<Vec<(usize, f32)>>,
}

impl AxisTaps {
    /// `(first, last)` pixel touched, `None` when every weight is zero.
    fn span(&self) -> Option<(usize, usize)> {
        let mut span: Option<(usize, usize)> = None;
        for &(i, w) in self.bins.iter().flatten() {
            if w != 0.0 {
                span = Some(match span {
                    None => (i, i),
                    Some((a, b)) => (a.min(i), b.max(i)),
                });
            }
        }
        span
    }
}

/// mmcv's sample positions along one axis and their bilinear taps (`bilinear_interpolate` of
/// `roi_align_kernel.cuh` / the CPU `pre_calc`), for `pooled` bins of `bin` pixels starting
/// at `start`, `grid` samples per bin, on an axis of `size` pixels.
pub fn axis_taps(start: f32, bin: f32, grid: i64, pooled: usize, size: usize) -> AxisTaps {
    let mut bins = vec![Vec::new(); pooled];
    if grid <= 0 || size == 0 {
        return AxisTaps { bins };
    }
    let inv = 1.0 / grid as f32;
    let limit = size as f32;
    for (p, taps) in bins.iter_mut().enumerate() {
        for i in 0..grid {
            // `roi_start + p * bin + (i + .5f) * bin / grid`, in mmcv's order
            let mut v = start + p as f32 * bin + (i as f32 + 0.5) * bin / grid as f32;
            if v < -1.0 || v > limit {
                continue;
            }
            if v <= 0.0 {
                v = 0.0;
            }
            let mut low = v as usize;
            let high;
            if low >= size - 1 {
                low = size - 1;
                high = low;
                v = low as f32;
            } else {
                high = low + 1;
            }
            let l = v - low as f32;
            taps.push((low, (1.0 - l) * inv));
            taps.push((high, l * inv));
        }
    }
    AxisTaps { bins }
}

/// The taps of one RoI on an `(h, w)` map: `(rows, cols)`.
pub fn roi_taps(roi: &Roi, cfg: &RoiAlignConfig, (h, w): (usize, usize)) -> (AxisTaps, AxisTaps) {
    let offset = if cfg.aligned { 0.5f32 } else { 0.0 };
    let s = cfg.spatial_scale;
    let start_w = roi[1] * s - offset;
    let start_h = roi[2] * s - offset;
    let end_w = roi[3] * s - offset;
    let end_h = roi[4] * s - offset;
    let (mut roi_w, mut roi_h) = (end_w - start_w, end_h - start_h);
    if !cfg.aligned {
        // the legacy (Detectron) model forces malformed RoIs to 1×1
        roi_w = roi_w.max(1.0);
        roi_h = roi_h.max(1.0);
    }
    let [ph, pw] = cfg.output_size;
    let (bin_h, bin_w) = (roi_h / ph as f32, roi_w / pw as f32);
    let grid = |size: f32, pooled: usize| -> i64 {
        if cfg.sampling_ratio > 0 {
            cfg.sampling_ratio as i64
        } else {
            (size / pooled as f32).ceil() as i64
        }
    };
    (
        axis_taps(start_h, bin_h, grid(roi_h, ph), ph, h),
        axis_taps(start_w, bin_w, grid(roi_w, pw), pw, w),
    )
}

/// Dense `(pooled, win)` weights of `taps` on the window starting at `first`.
fn window_weights(taps: &AxisTaps, first: usize, win: usize, out: &mut Vec<f32>) {
    for bin in &taps.bins {
        let mut row = vec![0f32; win];
        for &(i, wgt) in bin {
            if wgt != 0.0 {
                row[i - first] += wgt;
            }
        }
        out.extend(row);
    }
}

/// `RoIAlign(feat, rois)`: `feat (B, C, H, W)`, `rois` rows `(batch_idx, x1, y1, x2, y2)` →
/// `(N, C, out_h, out_w)`. Differentiable w.r.t. `feat`; the RoIs get no gradient (mmdet
/// detaches them).
pub fn roi_align(
    feat: Tensor<4>,
    rois: &[Roi],
    cfg: &RoiAlignConfig,
) -> Result<Tensor<4>, RoiAlignError> {
    let [b, c, h, w] = feat.dims();
    let [ph, pw] = cfg.output_size;
    if ph == 0 || pw == 0 {
        return Err(RoiAlignError::OutputSize(cfg.output_size));
    }
    let device: Device = feat.device();
    let n = rois.len();
    if n == 0 {
        return Ok(Tensor::zeros([0, c, ph, pw], &device));
    }
    for (i, r) in rois.iter().enumerate() {
        if !(r[0] >= 0.0 && (r[0] as usize) < b) {
            return Err(RoiAlignError::BatchIndex {
                roi: i,
                index: r[0],
                batch: b,
            });
        }
    }
    let taps: Vec<(AxisTaps, AxisTaps)> = rois.iter().map(|r| roi_taps(r, cfg, (h, w))).collect();
    let spans: Vec<Option<Span>> = taps
        .iter()
        .map(|(ty, tx)| ty.span().zip(tx.span()))
        .collect();
    let area = |i: usize| spans[i].map_or(1, |((y0, y1), (x0, x1))| (y1 - y0 + 1) * (x1 - x0 + 1));

    // (B, C, H, W) → (B·H·W, C): one row per pixel, so a window is a row gather
    let flat = feat.permute([0, 2, 3, 1]).reshape([b * h * w, c]);
    // RoIs of similar window size share a padded window: sort by area, pool in groups
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (area(i), i));
    let parts: Vec<Tensor<4>> = order
        .chunks(GROUP)
        .map(|group| {
            let geo = group
                .iter()
                .map(|&i| (rois[i][0] as usize, &taps[i], spans[i]));
            pool_group(&flat, geo, group.len(), [h, w, c], cfg.output_size, &device)
        })
        .collect();
    let out = Tensor::cat(parts, 0);
    let out = if order.iter().enumerate().all(|(k, &i)| k == i) {
        out
    } else {
        let mut inverse = vec![0i64; n];
        for (k, &i) in order.iter().enumerate() {
            inverse[i] = k as i64;
        }
        out.select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(inverse, [n]), &device),
        )
    };
    Ok(out)
}

/// `((y_first, y_last), (x_first, x_last))` of the pixels a RoI reads.
type Span = ((usize, usize), (usize, usize));

/// RoIs pooled with one padded window: bounds the padding waste (and the memory of the
/// gathered windows) when small and large RoIs meet on one level.
const GROUP: usize = 64;

/// Pools `n` RoIs given as `(batch index, taps, span)` from `flat (B·H·W, C)`:
/// `Ay · window · Axᵀ` per RoI, as `(n, C, out_h, out_w)`.
fn pool_group<'a>(
    flat: &Tensor<2>,
    geo: impl Iterator<Item = (usize, &'a (AxisTaps, AxisTaps), Option<Span>)> + Clone,
    n: usize,
    [h, w, c]: [usize; 3],
    [ph, pw]: [usize; 2],
    device: &Device,
) -> Tensor<4> {
    let win_h = geo
        .clone()
        .map(|(_, _, s)| s.map_or(1, |((a, b), _)| b - a + 1))
        .max()
        .unwrap_or(1);
    let win_w = geo
        .clone()
        .map(|(_, _, s)| s.map_or(1, |(_, (a, b))| b - a + 1))
        .max()
        .unwrap_or(1);
    let mut index = Vec::with_capacity(n * win_h * win_w);
    let mut ay = Vec::with_capacity(n * ph * win_h);
    let mut ax = Vec::with_capacity(n * pw * win_w);
    for (bi, (ty, tx), span) in geo {
        let base = bi * h * w;
        // no sample lands on the map: an all-zero window at the origin
        let ((y0, _), (x0, _)) = span.unwrap_or(((0, 0), (0, 0)));
        for i in 0..win_h {
            let y = (y0 + i).min(h - 1);
            for j in 0..win_w {
                index.push((base + y * w + (x0 + j).min(w - 1)) as i64);
            }
        }
        if span.is_some() {
            window_weights(ty, y0, win_h, &mut ay);
            window_weights(tx, x0, win_w, &mut ax);
        } else {
            ay.extend(std::iter::repeat_n(0.0, ph * win_h));
            ax.extend(std::iter::repeat_n(0.0, pw * win_w));
        }
    }
    let index = Tensor::<1, Int>::from_data(TensorData::new(index, [n * win_h * win_w]), device);
    let ay = Tensor::<3>::from_data(TensorData::new(ay, [n, ph, win_h]), device);
    let ax = Tensor::<3>::from_data(TensorData::new(ax, [n, pw, win_w]), device);
    let crop = flat.clone().select(0, index).reshape([n, win_h, win_w * c]);
    // rows: (n, ph, win_h) · (n, win_h, win_w·C) → (n, ph, win_w, C)
    let t = ay.matmul(crop).reshape([n, ph, win_w, c]);
    // columns: (n, pw, win_w) · (n, win_w, ph·C) → (n, pw, ph, C)
    let t = t.swap_dims(1, 2).reshape([n, win_w, ph * c]);
    ax.matmul(t).reshape([n, pw, ph, c]).permute([0, 3, 2, 1])
}

/// A direct port of mmcv's CPU forward (`ROIAlignForward`, avg mode) in f64 on host data, and
/// its backward (`ROIAlignBackward`): the reference the tensor version is tested against.
pub mod reference {
    use super::{Roi, RoiAlignConfig};

    fn bilinear(y: f64, x: f64, h: usize, w: usize) -> Option<[(usize, usize, f64); 4]> {
        let (mut y, mut x) = (y, x);
        if y < -1.0 || y > h as f64 || x < -1.0 || x > w as f64 {
            return None;
        }
        if y <= 0.0 {
            y = 0.0;
        }
        if x <= 0.0 {
            x = 0.0;
        }
        let (mut yl, mut xl) = (y as usize, x as usize);
        let (yh, xh);
        if yl >= h - 1 {
            yl = h - 1;
            yh = yl;
            y = yl as f64;
        } else {
            yh = yl + 1;
        }
        if xl >= w - 1 {
            xl = w - 1;
            xh = xl;
            x = xl as f64;
        } else {
            xh = xl + 1;
        }
        let (ly, lx) = (y - yl as f64, x - xl as f64);
        let (hy, hx) = (1.0 - ly, 1.0 - lx);
        Some([
            (yl, xl, hy * hx),
            (yl, xh, hy * lx),
            (yh, xl, ly * hx),
            (yh, xh, ly * lx),
        ])
    }

    /// For every output element `(n, ph, pw)`, the `(y, x, weight / count)` taps.
    fn taps(roi: &Roi, cfg: &RoiAlignConfig, h: usize, w: usize) -> Vec<Vec<(usize, usize, f64)>> {
        let off = if cfg.aligned { 0.5 } else { 0.0 };
        let s = cfg.spatial_scale as f64;
        let (sx, sy) = (roi[1] as f64 * s - off, roi[2] as f64 * s - off);
        let (ex, ey) = (roi[3] as f64 * s - off, roi[4] as f64 * s - off);
        let (mut rw, mut rh) = (ex - sx, ey - sy);
        if !cfg.aligned {
            rw = rw.max(1.0);
            rh = rh.max(1.0);
        }
        let [oh, ow] = cfg.output_size;
        let (bh, bw) = (rh / oh as f64, rw / ow as f64);
        let (gh, gw) = if cfg.sampling_ratio > 0 {
            (cfg.sampling_ratio as i64, cfg.sampling_ratio as i64)
        } else {
            (
                (rh / oh as f64).ceil() as i64,
                (rw / ow as f64).ceil() as i64,
            )
        };
        let count = (gh * gw).max(1) as f64;
        let mut out = Vec::with_capacity(oh * ow);
        for ph in 0..oh {
            for pw in 0..ow {
                let mut t = Vec::new();
                for iy in 0..gh.max(0) {
                    let y = sy + ph as f64 * bh + (iy as f64 + 0.5) * bh / gh as f64;
                    for ix in 0..gw.max(0) {
                        let x = sx + pw as f64 * bw + (ix as f64 + 0.5) * bw / gw as f64;
                        if let Some(c) = bilinear(y, x, h, w) {
                            t.extend(c.iter().map(|&(a, b, wt)| (a, b, wt / count)));
                        }
                    }
                }
                out.push(t);
            }
        }
        out
    }

    /// Forward on `feat (B, C, H, W)` row-major → `(N, C, oh, ow)` row-major.
    pub fn forward(
        feat: &[f64],
        [_b, c, h, w]: [usize; 4],
        rois: &[Roi],
        cfg: &RoiAlignConfig,
    ) -> Vec<f64> {
        let [oh, ow] = cfg.output_size;
        let mut out = vec![0.0; rois.len() * c * oh * ow];
        for (n, roi) in rois.iter().enumerate() {
            let b = roi[0] as usize;
            for (k, t) in taps(roi, cfg, h, w).iter().enumerate() {
                for ch in 0..c {
                    let map = &feat[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
                    out[(n * c + ch) * oh * ow + k] =
                        t.iter().map(|&(y, x, wt)| wt * map[y * w + x]).sum();
                }
            }
        }
        out
    }

    /// Backward: `d feat` for the output gradient `grad_out (N, C, oh, ow)`.
    pub fn backward(
        grad_out: &[f64],
        [b, c, h, w]: [usize; 4],
        rois: &[Roi],
        cfg: &RoiAlignConfig,
    ) -> Vec<f64> {
        let [oh, ow] = cfg.output_size;
        let mut g = vec![0.0; b * c * h * w];
        for (n, roi) in rois.iter().enumerate() {
            let bi = roi[0] as usize;
            for (k, t) in taps(roi, cfg, h, w).iter().enumerate() {
                for ch in 0..c {
                    let go = grad_out[(n * c + ch) * oh * ow + k];
                    for &(y, x, wt) in t {
                        g[((bi * c + ch) * h + y) * w + x] += go * wt;
                    }
                }
            }
        }
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [−1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn rois() -> Vec<Roi> {
        vec![
            [0.0, 4.0, 6.0, 40.0, 30.0],
            [1.0, -10.0, -8.0, 12.0, 9.0], // leaves the map at the top-left
            [0.0, 50.0, 30.0, 90.0, 70.0], // leaves it at the bottom-right
            [1.0, 200.0, 200.0, 230.0, 240.0], // entirely outside: zeros
            [0.0, 10.0, 10.0, 10.5, 30.0], // thinner than a bin
            [1.0, 0.0, 0.0, 76.0, 60.0],   // the whole image
        ]
    }

    fn check(cfg: RoiAlignConfig) {
        check_rois(cfg, &rois());
    }

    fn check_rois(cfg: RoiAlignConfig, rois: &[Roi]) {
        let dims = [2, 3, 15, 19];
        let feat = values(dims.iter().product(), 7);
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(TensorData::new(feat.clone(), dims), &device).require_grad();
        let rois = rois.to_vec();
        let y = roi_align(x.clone(), &rois, &cfg).unwrap();
        let f64s: Vec<f64> = feat.iter().map(|&v| v as f64).collect();
        let expected = reference::forward(&f64s, dims, &rois, &cfg);
        let got: Vec<f32> = y.to_data().convert::<f32>().try_into_vec().unwrap();
        assert_eq!(got.len(), expected.len());
        let max = expected.iter().fold(0f64, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(&expected)
            .fold(0f64, |m, (a, e)| m.max((*a as f64 - e).abs()));
        assert!(err <= 1e-5 * max, "forward error {err} (max {max})");
        // RoI 3 of `rois()` is outside the map
        if rois.len() == 6 {
            let [oh, ow] = cfg.output_size;
            let per = 3 * oh * ow;
            assert!(got[3 * per..4 * per].iter().all(|&v| v == 0.0));
        }

        let gw = values(got.len(), 11);
        let wt = Tensor::<4>::from_data(TensorData::new(gw.clone(), y.dims()), &device);
        let grads = (y * wt).sum().backward();
        let g: Vec<f32> = x
            .grad(&grads)
            .unwrap()
            .to_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        let go: Vec<f64> = gw.iter().map(|&v| v as f64).collect();
        let eg = reference::backward(&go, dims, &rois, &cfg);
        let gmax = eg.iter().fold(0f64, |m, v| m.max(v.abs()));
        let gerr = g
            .iter()
            .zip(&eg)
            .fold(0f64, |m, (a, e)| m.max((*a as f64 - e).abs()));
        assert!(gerr <= 1e-5 * gmax, "backward error {gerr} (max {gmax})");
    }

    #[test]
    fn matches_mmcv_reference_forward_and_backward() {
        check(RoiAlignConfig::new(7, 0.25, 0));
        check(RoiAlignConfig::new(7, 0.25, 2));
        check(RoiAlignConfig::new(14, 0.25, 0));
        check(RoiAlignConfig {
            output_size: [3, 5],
            spatial_scale: 0.25,
            sampling_ratio: 0,
            aligned: false,
        });
    }

    /// More RoIs than one group: pooled in size-sorted groups, returned in RoI order.
    #[test]
    fn many_rois_of_mixed_sizes() {
        let v = values(200 * 4, 9);
        let rois: Vec<Roi> = (0..200)
            .map(|i| {
                let (x, y) = (v[i * 4] * 40.0 + 30.0, v[i * 4 + 1] * 30.0 + 25.0);
                let (bw, bh) = ((v[i * 4 + 2] + 1.0) * 30.0, (v[i * 4 + 3] + 1.0) * 20.0);
                [(i % 2) as f32, x, y, x + bw, y + bh]
            })
            .collect();
        check_rois(RoiAlignConfig::new(7, 0.25, 0), &rois);
        check_rois(RoiAlignConfig::new(14, 0.25, 2), &rois);
    }

    /// The reference backward is the adjoint of the reference forward, checked by central
    /// finite differences (exact up to rounding: RoIAlign is linear in the features).
    #[test]
    fn reference_backward_matches_finite_differences() {
        let dims = [1, 2, 9, 11];
        let cfg = RoiAlignConfig::new(3, 0.5, 0);
        let rois = vec![[0.0, -3.0, 1.0, 15.0, 13.0], [0.0, 6.0, 2.0, 25.0, 21.0]];
        let feat: Vec<f64> = values(dims.iter().product(), 3)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let go: Vec<f64> = values(rois.len() * 2 * 9, 5)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let loss = |f: &[f64]| -> f64 {
            reference::forward(f, dims, &rois, &cfg)
                .iter()
                .zip(&go)
                .map(|(a, b)| a * b)
                .sum()
        };
        let g = reference::backward(&go, dims, &rois, &cfg);
        let eps = 1e-3;
        for (i, &gi) in g.iter().enumerate() {
            let (mut p, mut m) = (feat.clone(), feat.clone());
            p[i] += eps;
            m[i] -= eps;
            let fd = (loss(&p) - loss(&m)) / (2.0 * eps);
            assert!((fd - gi).abs() < 1e-9, "pixel {i}: fd {fd} vs {gi}");
        }
    }

    #[test]
    fn adaptive_grid_and_boundary_rules() {
        // a 10-pixel RoI over 7 bins: ceil(10 / 7) = 2 samples per bin
        let cfg = RoiAlignConfig::new(7, 1.0, 0);
        let (ty, _) = roi_taps(&[0.0, 0.5, 0.5, 10.5, 10.5], &cfg, (20, 20));
        assert!(ty.bins.iter().all(|b| b.len() == 4));
        // samples above −1 but below 0 are clamped to row 0 with full weight
        let t = axis_taps(-0.9, 0.2, 1, 1, 5);
        assert_eq!(t.bins[0], vec![(0, 1.0), (1, 0.0)]);
        // beyond the last row (≤ H) clamps to H − 1; beyond H is dropped
        let t = axis_taps(4.5, 0.5, 1, 2, 5);
        assert_eq!(t.bins[0], vec![(4, 1.0), (4, 0.0)]);
        assert!(t.bins[1].is_empty());
        // empty RoI list → (0, C, oh, ow)
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 4, 5, 5], &device);
        assert_eq!(
            roi_align(x.clone(), &[], &cfg).unwrap().dims(),
            [0, 4, 7, 7]
        );
        assert!(matches!(
            roi_align(x, &[[1.0, 0.0, 0.0, 1.0, 1.0]], &cfg),
            Err(RoiAlignError::BatchIndex { .. })
        ));
    }
}
