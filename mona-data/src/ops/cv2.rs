//! `cv2.resize` for 8-bit images, reproduced operation by operation.
//!
//! mmcv resizes with OpenCV by default, and models are trained on exactly those pixels, so we
//! follow OpenCV's integer pipeline rather than textbook bilinear interpolation:
//!
//! - **`INTER_LINEAR`** (`resizeGeneric` with `HResizeLinear` / `VResizeLinear`): half-pixel
//!   centres `f = (d + 0.5) * scale - 0.5` computed in `f32`, clamped at the borders (edge
//!   replication); 11-bit weights `round((1 - f) * 2048)`, `round(f * 2048)`; the horizontal
//!   pass keeps 22-bit sums in `i32`; the vertical pass uses the rounding of OpenCV's SIMD
//!   kernel, `(((S0 >> 4) * b0 >> 16) + ((S1 >> 4) * b1 >> 16) + 2) >> 2`, for every element
//!   (not the scalar `(S0 * b0 + S1 * b1 + 2^21) >> 22`, which OpenCV only uses on builds
//!   without SIMD and which differs by 1 grey level now and then).
//! - Exact 2× downscaling in both axes is what OpenCV turns into `INTER_AREA`'s fast path:
//!   `(a + b + c + d + 2) >> 2` over each 2×2 block.
//! - **`INTER_NEAREST`**: `src = min(floor(d * (1 / (dst / src))), src - 1)`, no half-pixel
//!   shift (this is why mmseg's nearest-resized label maps drift by half a pixel).
//! - Equal sizes copy.
//!
//! Buffers are interleaved `height × width × channels`; callers guarantee non-zero sizes.

/// OpenCV's `INTER_RESIZE_COEF_BITS`.
const COEF_BITS: u32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// One axis of linear interpolation: source index pairs and 11-bit weights per output index.
struct Taps {
    index: Vec<[usize; 2]>,
    weight: Vec<[i32; 2]>,
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR)`.
pub fn resize_linear(
    src: &[u8],
    (sw, sh): (usize, usize),
    cn: usize,
    (dw, dh): (usize, usize),
) -> Vec<u8> {
    if (sw, sh) == (dw, dh) {
        return src.to_vec();
    }
    if sw == 2 * dw && sh == 2 * dh {
        return area_fast_2x(src, sw, cn, (dw, dh));
    }
    let xs = linear_taps(sw, dw, true);
    let ys = linear_taps(sh, dh, false);
    let row_len = dw * cn;
    // Horizontal pass of one source row into 22-bit fixed point.
    let hpass = |y: usize| -> Vec<i32> {
        let row = &src[y * sw * cn..(y + 1) * sw * cn];
        let mut out = Vec::with_capacity(row_len);
        for (idx, w) in xs.index.iter().zip(&xs.weight) {
            for k in 0..cn {
                let a = i32::from(row[idx[0] * cn + k]);
                let b = i32::from(row[idx[1] * cn + k]);
                out.push(a * w[0] + b * w[1]);
            }
        }
        out
    };
    let mut cache: Vec<Option<Vec<i32>>> = vec![None; sh];
    let mut dst = Vec::with_capacity(dh * row_len);
    for (idx, w) in ys.index.iter().zip(&ys.weight) {
        for &r in idx {
            if cache[r].is_none() {
                cache[r] = Some(hpass(r));
            }
        }
        let (Some(s0), Some(s1)) = (&cache[idx[0]], &cache[idx[1]]) else {
            unreachable!("both rows were just computed")
        };
        let (b0, b1) = (w[0], w[1]);
        for x in 0..row_len {
            let t0 = ((s0[x] >> 4).clamp(-32768, 32767) * b0) >> 16;
            let t1 = ((s1[x] >> 4).clamp(-32768, 32767) * b1) >> 16;
            dst.push(((t0 + t1 + 2) >> 2).clamp(0, 255) as u8);
        }
    }
    dst
}

/// OpenCV's tap computation for `INTER_LINEAR` (see the module docs). `clamp_weight` mirrors
/// the x axis, where OpenCV also zeroes the fraction at the borders; on the y axis it keeps
/// the fraction and clamps only the row indices, which gives the same value.
fn linear_taps(src: usize, dst: usize, clamp_weight: bool) -> Taps {
    let inv_scale = dst as f64 / src as f64;
    let scale = 1.0 / inv_scale;
    let last = src as i64 - 1;
    let mut taps = Taps {
        index: Vec::with_capacity(dst),
        weight: Vec::with_capacity(dst),
    };
    for d in 0..dst {
        let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let mut s = f.floor() as i64;
        f -= s as f32;
        if clamp_weight {
            if s < 0 {
                f = 0.0;
                s = 0;
            }
            if s >= last {
                f = 0.0;
                s = last;
            }
        }
        let w0 = ((1.0 - f) * COEF_SCALE).round_ties_even() as i32;
        let w1 = (f * COEF_SCALE).round_ties_even() as i32;
        taps.index
            .push([s.clamp(0, last) as usize, (s + 1).clamp(0, last) as usize]);
        taps.weight.push([w0, w1]);
    }
    taps
}

/// OpenCV's `INTER_AREA` fast path for an exact 2× reduction (taken for `INTER_LINEAR` too).
fn area_fast_2x(src: &[u8], sw: usize, cn: usize, (dw, dh): (usize, usize)) -> Vec<u8> {
    let stride = sw * cn;
    let mut dst = Vec::with_capacity(dw * dh * cn);
    for y in 0..dh {
        let r0 = &src[2 * y * stride..(2 * y + 1) * stride];
        let r1 = &src[(2 * y + 1) * stride..(2 * y + 2) * stride];
        for x in 0..dw {
            for k in 0..cn {
                let i = 2 * x * cn + k;
                let sum = u32::from(r0[i])
                    + u32::from(r0[i + cn])
                    + u32::from(r1[i])
                    + u32::from(r1[i + cn]);
                dst.push(((sum + 2) >> 2) as u8);
            }
        }
    }
    dst
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_NEAREST)`.
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
        let step = 1.0 / (d as f64 / s as f64);
        (0..d)
            .map(|i| ((i as f64 * step).floor() as usize).min(s - 1))
            .collect()
    };
    super::gather_pixels(src, sw, cn, &map(sw, dw), &map(sh, dh))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upscale_two_pixels_matches_opencv() {
        // cv2.resize(np.array([[0, 100]], np.uint8), (4, 1)) == [[0, 25, 75, 100]]
        assert_eq!(
            resize_linear(&[0, 100], (2, 1), 1, (4, 1)),
            vec![0, 25, 75, 100]
        );
    }

    #[test]
    fn exact_halving_averages_blocks() {
        let src = [1, 2, 3, 4, 5, 6, 7, 8];
        // 4x2 -> 2x1: (1+2+5+6+2)>>2 = 4, (3+4+7+8+2)>>2 = 6
        assert_eq!(resize_linear(&src, (4, 2), 1, (2, 1)), vec![4, 6]);
    }

    #[test]
    fn nearest_has_no_half_pixel_shift() {
        // 3 -> 2: step 1.5, sources floor(0) = 0, floor(1.5) = 1.
        assert_eq!(
            resize_nearest(&[10, 20, 30], (3, 1), 1, (2, 1)),
            vec![10, 20]
        );
    }

    #[test]
    fn constant_image_stays_constant() {
        let src = vec![77u8; 7 * 5 * 3];
        let out = resize_linear(&src, (7, 5), 3, (13, 9));
        assert!(out.iter().all(|&v| v == 77), "{out:?}");
    }
}
