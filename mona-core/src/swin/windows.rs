//! Window partitioning and the shifted-window attention mask.

use burn::tensor::{Device, Tensor, TensorData};

/// `(B, Hp, Wp, C)` → `(B·nW, w², C)`, windows row-major per image, images in order.
pub fn window_partition(x: Tensor<4>, w: usize) -> Tensor<3> {
    let [b, hp, wp, c] = x.dims();
    x.reshape([b, hp / w, w, wp / w, w, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b * (hp / w) * (wp / w), w * w, c])
}

/// Inverse of [`window_partition`]: `(B·nW, w², C)` → `(B, Hp, Wp, C)`.
pub fn window_reverse(windows: Tensor<3>, w: usize, hp: usize, wp: usize) -> Tensor<4> {
    let [bn, _, c] = windows.dims();
    let b = bn / ((hp / w) * (wp / w));
    windows
        .reshape([b, hp / w, wp / w, w, w, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, hp, wp, c])
}

/// The additive mask of shifted-window attention, `(nW, w², w²)`, on the padded grid
/// `(hp, wp)`: 0 where two positions carry the same region label, −100 elsewhere.
///
/// Computed for every shift > 0, including a stage that is a single window (the official
/// det-style code never disables the shift, unlike the classification Swin).
pub fn shifted_window_mask(hp: usize, wp: usize, w: usize, shift: usize) -> Vec<f32> {
    let ranges = |len: usize| [(0, len - w), (len - w, len - shift), (len - shift, len)];
    let mut label = vec![0u32; hp * wp];
    let mut cnt = 0;
    for (h0, h1) in ranges(hp) {
        for (w0, w1) in ranges(wp) {
            for r in h0..h1 {
                for c in w0..w1 {
                    label[r * wp + c] = cnt;
                }
            }
            cnt += 1;
        }
    }
    let (nh, nw) = (hp / w, wp / w);
    let n = w * w;
    let mut mask = vec![0f32; nh * nw * n * n];
    for wi in 0..nh {
        for wj in 0..nw {
            let win = wi * nw + wj;
            let lab: Vec<u32> = (0..n)
                .map(|p| label[(wi * w + p / w) * wp + wj * w + p % w])
                .collect();
            let base = win * n * n;
            for p in 0..n {
                for q in 0..n {
                    if lab[p] != lab[q] {
                        mask[base + p * n + q] = -100.0;
                    }
                }
            }
        }
    }
    mask
}

/// [`shifted_window_mask`] as a `(nW, w², w²)` tensor on `device`.
pub fn shifted_window_mask_tensor(
    hp: usize,
    wp: usize,
    w: usize,
    shift: usize,
    device: &Device,
) -> Tensor<3> {
    let nw = (hp / w) * (wp / w);
    let data = TensorData::new(shifted_window_mask(hp, wp, w, shift), [nw, w * w, w * w]);
    Tensor::from_data(data, device)
}
