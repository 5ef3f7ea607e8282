//! Parameter initialisers matching PyTorch / timm.
//!
//! Every parameter is created lazily (`Param::uninitialized`): its shape is known at once,
//! its values are drawn on first use. Building Swin-L to count its parameters, or building a
//! model whose weights a checkpoint is about to overwrite, then costs no random draws.

use burn::module::{Param, ParamId};
use burn::tensor::{Device, Distribution, Shape, Tensor};

fn lazy<const D: usize>(
    shape: [usize; D],
    device: &Device,
    make: impl FnOnce(Shape, &Device) -> Tensor<D> + Send + Sync + 'static,
) -> Param<Tensor<D>> {
    Param::uninitialized(
        ParamId::new(),
        move |dev, require_grad| make(Shape::new(shape), dev).set_require_grad(require_grad),
        device.clone(),
        true,
        Shape::new(shape),
    )
}

/// timm's `trunc_normal_(std)` with the default cut at ±2 (absolute): for std 0.02 that is
/// ±100σ, i.e. effectively an untruncated normal. Values beyond ±2 are clamped,
/// which differs from resampling only on a set of negligible measure.
pub fn trunc_normal<const D: usize>(
    shape: [usize; D],
    std: f64,
    device: &Device,
) -> Param<Tensor<D>> {
    lazy(shape, device, move |s, d| {
        Tensor::random(s, Distribution::Normal(0.0, std), d).clamp(-2.0, 2.0)
    })
}

/// `N(0, std²)`.
pub fn normal<const D: usize>(shape: [usize; D], std: f64, device: &Device) -> Param<Tensor<D>> {
    lazy(shape, device, move |s, d| {
        Tensor::random(s, Distribution::Normal(0.0, std), d)
    })
}

/// Uniform `U(-bound, bound)`.
pub fn uniform<const D: usize>(shape: [usize; D], bound: f64, device: &Device) -> Param<Tensor<D>> {
    lazy(shape, device, move |s, d| {
        Tensor::random(s, Distribution::Uniform(-bound, bound), d)
    })
}

/// A constant.
pub fn constant<const D: usize>(
    shape: [usize; D],
    value: f64,
    device: &Device,
) -> Param<Tensor<D>> {
    lazy(shape, device, move |s, d| Tensor::full(s, value, d))
}

/// PyTorch's default Conv/Linear init bound: kaiming-uniform with a = √5 gives 1/√fan_in.
pub fn kaiming_uniform_bound(fan_in: usize) -> f64 {
    1.0 / (fan_in as f64).sqrt()
}
