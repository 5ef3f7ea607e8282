//! Sigmoid focal loss (mmdet `py_sigmoid_focal_loss`), elementwise and differentiable:
//! `BCEWithLogits(x, t) · (α t + (1 − α)(1 − t)) · pt^γ` with `pt = (1 − p) t + p (1 − t)`.

use burn::tensor::Tensor;
use burn::tensor::activation::sigmoid;

/// The elementwise loss for logits `x` and (one-hot, float) targets `t` of the same shape.
pub fn sigmoid_focal_loss<const D: usize>(
    logits: Tensor<D>,
    targets: Tensor<D>,
    alpha: f32,
    gamma: f32,
) -> Tensor<D> {
    let p = sigmoid(logits.clone());
    let one_minus_t = targets.clone().neg().add_scalar(1.0);
    let pt = p.clone().neg().add_scalar(1.0) * targets.clone() + p * one_minus_t.clone();
    let weight = targets.clone().mul_scalar(alpha) + one_minus_t.mul_scalar(1.0 - alpha);
    let focal = weight * pt.powf_scalar(gamma);
    // BCE with logits, stable: max(x, 0) − x t + log(1 + exp(−|x|))
    let bce =
        logits.clone().clamp_min(0.0) - logits.clone() * targets + logits.abs().neg().exp().log1p();
    bce * focal
}
