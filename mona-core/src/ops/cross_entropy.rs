//! Pixel-wise softmax cross entropy with an ignore index (mmseg's `CrossEntropyLoss`).

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// How the per-pixel losses are averaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeReduction {
    /// mmseg 0.x (the official Mona code) and mmseg 1.x with `avg_non_ignore=False`:
    /// ignored pixels count as 0 in the mean over **all** pixels.
    MeanAll,
    /// `F.cross_entropy(reduction='mean', ignore_index)`: mean over the non-ignored pixels
    /// (mmseg 1.x `avg_non_ignore=True`); 0 when every pixel is ignored.
    MeanNonIgnored,
}

/// Cross entropy of `logits (B, K, H, W)` against `labels (B, H, W)`; pixels labelled
/// `ignore_index` contribute nothing. Returns a `[1]` tensor.
pub fn pixel_cross_entropy(
    logits: Tensor<4>,
    labels: Tensor<3, Int>,
    ignore_index: i64,
    reduction: CeReduction,
) -> Tensor<1> {
    let [b, k, h, w] = logits.dims();
    let n = b * h * w;
    // (B, K, H, W) → (B·H·W, K)
    let flat = logits.permute([0, 2, 3, 1]).reshape([n, k]);
    let logp = log_softmax(flat, 1);
    let labels = labels.reshape([n]);
    let ignored = labels.clone().equal_elem(ignore_index);
    let valid = ignored.clone().bool_not().float();
    let safe = labels.mask_fill(ignored, 0).clamp(0, k as i64 - 1);
    let picked = logp.gather(1, safe.reshape([n, 1])).reshape([n]);
    let total = (picked * valid.clone()).sum().neg();
    match reduction {
        CeReduction::MeanAll => total / n.max(1) as f64,
        CeReduction::MeanNonIgnored => total / valid.sum().clamp_min(1.0),
    }
}
