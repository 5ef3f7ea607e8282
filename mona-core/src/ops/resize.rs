//! Bilinear and nearest resize of `(B, C, H, W)` maps with PyTorch's `F.interpolate`
//! semantics for an explicit output `size` (`align_corners=False`), written as two matmuls
//! with interpolation matrices so that the backward pass exists on every backend (burn 0.22.1
//! has no bilinear interpolate backward on CUDA).

use burn::tensor::{Device, Tensor, TensorData};

/// Interpolation mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeMode {
    /// `mode='bilinear', align_corners=False`.
    Bilinear,
    /// `mode='nearest'`: `src = floor(dst · in / out)`.
    Nearest,
}

/// The `(out, in)` row-stochastic matrix that maps a length-`input` signal to `output` samples.
pub fn interp_matrix(input: usize, output: usize, mode: ResizeMode) -> Vec<f32> {
    let mut m = vec![0f32; output * input];
    if input == 0 || output == 0 {
        return m;
    }
    let scale = input as f64 / output as f64;
    for o in 0..output {
        let row = &mut m[o * input..(o + 1) * input];
        match mode {
            ResizeMode::Nearest => {
                let src = ((o as f64 * scale).floor() as usize).min(input - 1);
                row[src] = 1.0;
            }
            ResizeMode::Bilinear => {
                let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
                let i0 = (src.floor() as usize).min(input - 1);
                let i1 = (i0 + 1).min(input - 1);
                let l1 = (src - i0 as f64).clamp(0.0, 1.0);
                row[i0] += (1.0 - l1) as f32;
                row[i1] += l1 as f32;
            }
        }
    }
    m
}

/// Applies `(out_h, H)` and `(out_w, W)` matrices to `x (B, C, H, W)`:
/// `out = Mh · x · Mwᵀ` per channel.
pub fn apply_separable(
    x: Tensor<4>,
    mh: Vec<f32>,
    mw: Vec<f32>,
    out_h: usize,
    out_w: usize,
) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device: Device = x.device();
    let mw_t = Tensor::<2>::from_data(TensorData::new(mw, [out_w, w]), &device).transpose();
    let mh_t = Tensor::<2>::from_data(TensorData::new(mh, [out_h, h]), &device).transpose();
    // (B·C·H, W) · (W, out_w)
    let y = x.reshape([b * c * h, w]).matmul(mw_t);
    // (B·C, H, out_w) → (B·C, out_w, H) → (B·C·out_w, H) · (H, out_h)
    let y = y
        .reshape([b * c, h, out_w])
        .swap_dims(1, 2)
        .reshape([b * c * out_w, h])
        .matmul(mh_t);
    y.reshape([b * c, out_w, out_h])
        .swap_dims(1, 2)
        .reshape([b, c, out_h, out_w])
}

/// `F.interpolate(x, size=(out_h, out_w), mode, align_corners=False)`.
pub fn resize(x: Tensor<4>, size: [usize; 2], mode: ResizeMode) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [out_h, out_w] = size;
    if h == out_h && w == out_w {
        return x;
    }
    let mh = interp_matrix(h, out_h, mode);
    let mw = interp_matrix(w, out_w, mode);
    apply_separable(x, mh, mw, out_h, out_w)
}

/// Bilinear resize, `align_corners=False` (mmseg's `resize`).
pub fn bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    resize(x, size, ResizeMode::Bilinear)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_to_one() {
        for (i, o) in [(13, 50), (15, 4), (7, 7), (1, 5), (5, 1)] {
            let m = interp_matrix(i, o, ResizeMode::Bilinear);
            for r in 0..o {
                let s: f32 = m[r * i..(r + 1) * i].iter().sum();
                assert!((s - 1.0).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn identity_when_same_size() {
        let m = interp_matrix(4, 4, ResizeMode::Bilinear);
        for r in 0..4 {
            assert_eq!(m[r * 4 + r], 1.0);
        }
    }
}
