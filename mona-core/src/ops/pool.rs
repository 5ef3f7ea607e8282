//! `nn.AdaptiveAvgPool2d(out)` with PyTorch's bin rule
//! (`start = floor(i·in/out)`, `end = ceil((i+1)·in/out)`), as two matmuls (differentiable on
//! every backend; output larger than the input is allowed, as in the PPM of UPerHead).

use burn::tensor::Tensor;

use super::resize::apply_separable;

/// The `(out, in)` averaging matrix of one axis.
pub fn pool_matrix(input: usize, output: usize) -> Vec<f32> {
    let mut m = vec![0f32; output * input];
    for o in 0..output {
        let start = (o * input) / output;
        let end = ((o + 1) * input).div_ceil(output);
        let n = (end - start).max(1) as f32;
        for i in start..end.min(input) {
            m[o * input + i] = 1.0 / n;
        }
    }
    m
}

/// `F.adaptive_avg_pool2d(x, (out_h, out_w))` of `x (B, C, H, W)`.
pub fn adaptive_avg_pool2d(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let [out_h, out_w] = size;
    apply_separable(
        x,
        pool_matrix(h, out_h),
        pool_matrix(w, out_w),
        out_h,
        out_w,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_match_pytorch() {
        // in 5, out 3: bins [0,2), [1,4), [3,5)
        let m = pool_matrix(5, 3);
        assert_eq!(&m[0..5], &[0.5, 0.5, 0.0, 0.0, 0.0]);
        let t = 1.0 / 3.0;
        assert_eq!(&m[5..10], &[0.0, t, t, t, 0.0]);
        assert_eq!(&m[10..15], &[0.0, 0.0, 0.0, 0.5, 0.5]);
    }
}
