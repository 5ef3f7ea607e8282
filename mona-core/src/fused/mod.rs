//! Fused CPU kernels for the hot paths of Swin and Mona, as differentiable backend
//! operations (burn's `backend_extension`, with hand-written backward passes).
//!
//! burn-flex runs a model op by op: each element-wise op is its own single-threaded pass,
//! layer norm and GELU are decomposed by autodiff (and keep their intermediates for the
//! backward pass), and depthwise convolutions go through generic grouped-convolution code.
//! The ops here do each of these hot paths in one parallel, vectorised pass each way:
//! - [`fused_gelu`]: exact GELU with optional inverted dropout (mask from a counter-based
//!   hash, nothing stored);
//! - [`fused_layer_norm`]: layer norm keeping only its input;
//! - [`fused_linear`]: `x·Wᵀ + b`, tiled over the threads (gemm's own threading packs the
//!   weight and fills the output on the calling thread);
//! - [`depthwise_nhwc`]: depthwise convolution on channels-last maps;
//! - [`gather_rows`]: Swin's padding, cyclic shift and window partition (and their inverse)
//!   as one copy of token rows;
//! - [`window_attention`]: a block's window attention, from `qkv` to the heads' output, with
//!   relative position bias and mask, computed per window in cache;
//! - [`adam_update`]: the optimizer's Adam/AdamW update of a parameter, in place (not an
//!   autodiff op: it runs on the gradients).
//!
//! They serve f32 tensors on the flex device (with or without autodiff); [`enabled`] is the
//! switch. The GELU, the layer norm, the depthwise convolution and the token gather also
//! have cubecl kernels (in a build with `cuda` or `cubecl-cpu`), computed by the same
//! formulas, so on cubecl devices they serve too ([`enabled_with_cube`]): there they keep
//! the memory of the backward pass as small as on flex, and replace cubecl's generic
//! grouped convolution, whose depthwise weight gradient is a serial sum per weight. The
//! fused linear, window attention and Adam step exist for flex only: on cubecl the layers
//! use the composed tensor ops, which burn's fusion and matmul kernels serve well. Other
//! dtypes always take the composed ops. Numerics are those of the composed ops up to float
//! rounding (summation order; `math` documents the GELU's accuracy); dropout masks are
//! drawn differently, but as reproducibly, and identically on flex and cubecl.

mod adam;
#[cfg(feature = "cube-kernels")]
mod cube;
mod depthwise;
mod flex;
mod gelu;
mod layer_norm;
mod linear;
pub mod math;
mod simd;
mod token_gather;
mod window_attention;

use std::cell::Cell;
use std::sync::OnceLock;

use burn::backend::DispatchDevice;
use burn::tensor::{DType, Device, Tensor};

pub use adam::{AdamStep, adam_update};
pub use depthwise::{DepthwiseNhwcBackend, depthwise_nhwc};
pub use gelu::{DropMask, FusedGeluBackend, fused_gelu};
pub use layer_norm::{FusedLayerNormBackend, fused_layer_norm};
pub use linear::{FusedLinearBackend, fused_linear};
pub use token_gather::{GatherRowsBackend, RowMap, gather_rows};
pub use window_attention::{HEAD_DIM, MAX_TOKENS, WindowAttentionBackend, window_attention};

thread_local! {
    static COMPOSED_ON_THIS_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether the fused kernels are off for the whole process: `MONA_FUSED=0` (read once).
fn disabled_by_env() -> bool {
    static OFF: OnceLock<bool> = OnceLock::new();
    *OFF.get_or_init(|| std::env::var("MONA_FUSED").is_ok_and(|v| v == "0"))
}

/// Runs `f` with the fused kernels off on this thread, so that the layers take their
/// composed tensor-op paths (to compare the two in one process).
pub fn composed<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            COMPOSED_ON_THIS_THREAD.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(COMPOSED_ON_THIS_THREAD.with(|c| c.replace(true)));
    f()
}

/// Whether the fused kernels serve `x`: an f32 tensor on the flex device (autodiff or
/// not), unless turned off by `MONA_FUSED=0` or [`composed`].
pub fn enabled<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32
        && on_flex(&x.device())
        && !disabled_by_env()
        && !COMPOSED_ON_THIS_THREAD.with(Cell::get)
}

/// Whether the fused ops that also have cubecl kernels serve `x`: as [`enabled`], and also
/// on a cubecl device in a build with those kernels.
pub fn enabled_with_cube<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32
        && (on_flex(&x.device()) || on_cube(&x.device()))
        && !disabled_by_env()
        && !COMPOSED_ON_THIS_THREAD.with(Cell::get)
}

#[cfg(feature = "cube-kernels")]
fn on_cube(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Cube(_)
    )
}

#[cfg(not(feature = "cube-kernels"))]
fn on_cube(_device: &Device) -> bool {
    false
}

fn on_flex(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        DispatchDevice::Flex(_)
    )
}
