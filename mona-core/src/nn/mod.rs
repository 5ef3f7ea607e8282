//! Layers with PyTorch's parameter names and layouts.
//!
//! burn's own `Linear` stores its weight as `[in, out]` and `LayerNorm` names its affine
//! parameters `gamma`/`beta`; ours store exactly what the official state dicts hold
//! (`weight` `[out, in]`, `bias`), so a module path *is* the official key and checkpoints map
//! 1:1 without adapters.

mod activation;
pub mod amp;
mod batch_norm;
mod conv;
mod conv_module;
mod drop_path;
mod dropout;
pub mod init;
mod layer_norm;
mod linear;
mod running_buffer;

pub use activation::{gelu, gelu_dropout};
pub use batch_norm::{BatchNorm2d, BatchNormKind, NormCfg};
pub use conv::Conv2d;
pub use conv_module::ConvModule;
pub use drop_path::DropPath;
pub use dropout::Dropout;
pub use init::{kaiming_uniform_bound, trunc_normal, uniform};
pub use layer_norm::LayerNorm;
pub use linear::{Linear, linear};
pub use running_buffer::RunningBuffer;
