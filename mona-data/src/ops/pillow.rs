//! `PIL.Image.resize` for 8-bit images (mmcv's `backend='pillow'`), reproduced from Pillow's
//! `Resample.c` and `Geometry.c`.
//!
//! Pillow differs from OpenCV in ways that change pixels: bilinear **antialiases** when
//! shrinking (the triangle filter is widened by the scale factor), weights are 22-bit fixed
//! point, and the horizontal pass is rounded to 8 bits before the vertical pass. Nearest
//! samples at pixel centres, `floor((d + 0.5) * scale)`, accumulated by repeated addition as
//! Pillow does.
//!
//! Buffers are interleaved `height × width × channels`; callers guarantee non-zero sizes.

/// Pillow's `PRECISION_BITS` for 8-bit resampling (`32 - 8 - 2`).
const PRECISION_BITS: u32 = 22;

/// Pillow's per-output-pixel filter window: first source index and 22-bit weights.
struct Window {
    start: usize,
    weights: Vec<i32>,
}

/// `Image.resize((dw, dh), Image.BILINEAR)`.
pub fn resize_bilinear(
    src: &[u8],
    (sw, sh): (usize, usize),
    cn: usize,
    (dw, dh): (usize, usize),
) -> Vec<u8> {
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    let mut data = src.to_vec();
    let mut width = sw;
    let mut height = sh;
    if dw != sw {
        let windows = bilinear_windows(sw, dw);
        let mut out = Vec::with_capacity(dw * height * cn);
        for y in 0..height {
            let row = &data[y * width * cn..(y + 1) * width * cn];
            for win in &windows {
                for k in 0..cn {
                    let taps = win
                        .weights
                        .iter()
                        .enumerate()
                        .map(|(i, w)| (row[(win.start + i) * cn + k], *w));
                    out.push(accumulate(taps));
                }
            }
        }
        data = out;
        width = dw;
    }
    if dh != height {
        let windows = bilinear_windows(height, dh);
        let stride = width * cn;
        let mut out = Vec::with_capacity(dh * stride);
        for win in &windows {
            for x in 0..stride {
                let taps = win
                    .weights
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (data[(win.start + i) * stride + x], *w));
                out.push(accumulate(taps));
            }
        }
        data = out;
        height = dh;
    }
    debug_assert_eq!(data.len(), width * height * cn);
    data
}

/// Sum of `pixel * weight` with Pillow's rounding and clipping.
fn accumulate(taps: impl Iterator<Item = (u8, i32)>) -> u8 {
    let mut sum: i32 = 1 << (PRECISION_BITS - 1);
    for (p, w) in taps {
        sum = sum.wrapping_add(i32::from(p).wrapping_mul(w));
    }
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the bilinear (triangle) filter.
fn bilinear_windows(src: usize, dst: usize) -> Vec<Window> {
    let scale = src as f64 / dst as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale; // the triangle filter's support is 1
    let ss = 1.0 / filterscale;
    (0..dst)
        .map(|d| {
            let center = (d as f64 + 0.5) * scale;
            // C casts truncate toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(src as i64) as usize;
            let count = xmax.saturating_sub(xmin);
            let raw: Vec<f64> = (0..count)
                .map(|i| triangle(((i + xmin) as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|&w| {
                    let w = if total != 0.0 { w / total } else { w };
                    let scaled = w * f64::from(1u32 << PRECISION_BITS);
                    if w < 0.0 {
                        (scaled - 0.5) as i32
                    } else {
                        (scaled + 0.5) as i32
                    }
                })
                .collect();
            Window {
                start: xmin,
                weights,
            }
        })
        .collect()
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// `Image.resize((dw, dh), Image.NEAREST)` (Pillow's `ImagingScaleAffine`).
pub fn resize_nearest(
    src: &[u8],
    (sw, sh): (usize, usize),
    cn: usize,
    (dw, dh): (usize, usize),
) -> Vec<u8> {
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    let map = |s: usize, d: usize| -> Vec<usize> {
        let step = s as f64 / d as f64;
        let mut pos = step * 0.5;
        (0..d)
            .map(|_| {
                let i = (pos.max(0.0) as usize).min(s - 1);
                pos += step;
                i
            })
            .collect()
    };
    super::gather_pixels(src, sw, cn, &map(sw, dw), &map(sh, dh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinking_antialiases() {
        // 4 -> 2 with Pillow bilinear: support 2, each output averages a 4-pixel triangle.
        // Out[0]: center 1.0, taps x=0..3 weights (0.75, 0.75, 0.25, 0) / 1.75 ... computed
        // from the formula; the point is that it is not OpenCV's 2x2 average.
        let out = resize_bilinear(&[0, 0, 255, 255], (4, 1), 1, (2, 1));
        assert!(out[0] > 0 && out[1] < 255, "{out:?}");
    }

    #[test]
    fn constant_stays_constant() {
        let out = resize_bilinear(&[200u8; 9 * 7 * 3], (9, 7), 3, (4, 11));
        assert!(out.iter().all(|&v| v == 200), "{out:?}");
    }

    #[test]
    fn nearest_samples_centres() {
        // 4 -> 2: centres 1.0 and 3.0.
        assert_eq!(resize_nearest(&[1, 2, 3, 4], (4, 1), 1, (2, 1)), vec![2, 4]);
    }
}
