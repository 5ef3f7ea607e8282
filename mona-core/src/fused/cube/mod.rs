//! The fused ops' kernels for burn's cubecl backend (CUDA, and cubecl's CPU runtime, where
//! the golden fixtures check them on a machine without a GPU).
//!
//! Each kernel computes what its flex counterpart computes, with the same formulas (the
//! GELU's normal CDF and exponential, LayerNorm's two-pass statistics, the dropout hash), so
//! that a run on a GPU matches a run on the CPU to float rounding. Reductions that feed
//! parameter gradients (LayerNorm's weight and bias, the depthwise convolution's weight and
//! bias) sum fixed-size blocks first and add the blocks' partial sums in block order: no
//! atomics, so the results are the same from run to run.

mod depthwise;
mod gather;
mod gelu;
mod layer_norm;

use burn::tensor::{DType, Shape};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::{CubeCount, CubeDim, calculate_cube_count_elemwise};

/// A new, uninitialised f32 tensor of `shape` on `like`'s device.
fn empty_like(like: &CubeTensor, shape: Shape) -> CubeTensor {
    empty_device_dtype(like.client.clone(), like.device.clone(), shape, DType::F32)
}

/// `tensor` as a contiguous f32 tensor (the kernels index flat, row-major buffers).
fn contiguous(tensor: CubeTensor) -> CubeTensor {
    assert_eq!(
        tensor.dtype,
        DType::F32,
        "the fused kernels take f32 tensors"
    );
    into_contiguous(tensor)
}

/// A launch of one unit per element over `n` elements.
fn elementwise(like: &CubeTensor, n: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(&like.client, n.max(1));
    (
        calculate_cube_count_elemwise(&like.client, n.max(1), dim),
        dim,
    )
}
