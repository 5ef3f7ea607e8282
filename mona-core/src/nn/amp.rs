//! Mixed precision ("autocast"): matrix products and convolutions compute in bf16 while the
//! parameters, their gradients, the optimizer state, the norms and the losses stay float32.
//!
//! burn 0.22.1 has no autocast and ops do not promote mixed dtypes, so the layers that carry
//! the FLOPs (`Linear`, `Conv2d`, the attention products) ask [`autocast`] and, when it is on,
//! cast both operands to the compute dtype and the result back to float32. The cast is
//! differentiable (its gradient is cast back), so the f32 master weights receive f32
//! gradients. bf16 keeps f32's exponent range, so no loss scaling is needed; f16 is refused
//! because it would need one.
//!
//! The setting is process-wide, like `torch.autocast` around a whole training script: every
//! worker thread of a run uses the same precision.

use std::sync::atomic::{AtomicU8, Ordering};

use burn::tensor::{FloatDType, Tensor};

static AUTOCAST: AtomicU8 = AtomicU8::new(0);

/// Compute precisions the layers can autocast to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything float32 (the default).
    Fp32,
    /// Matrix products and convolutions in bfloat16, all else float32.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" | "f32" | "float32" => Ok(Self::Fp32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!(
                "unknown precision `{other}`: expected fp32 or bf16 (f16 would need loss scaling, which is not implemented)"
            )),
        }
    }
}

/// Sets the process-wide compute precision.
pub fn set_precision(p: Precision) {
    AUTOCAST.store(p as u8, Ordering::Relaxed);
}

/// The process-wide compute precision.
pub fn precision() -> Precision {
    match AUTOCAST.load(Ordering::Relaxed) {
        1 => Precision::Bf16,
        _ => Precision::Fp32,
    }
}

/// The dtype matrix products run in, when autocast is on.
pub fn autocast() -> Option<FloatDType> {
    match precision() {
        Precision::Fp32 => None,
        Precision::Bf16 => Some(FloatDType::BF16),
    }
}

/// `a.matmul(b)`, computed in the autocast dtype when it is on; the result is float32.
pub fn matmul<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    match autocast() {
        None => a.matmul(b),
        Some(dt) => a.cast(dt).matmul(b.cast(dt)).cast(FloatDType::F32),
    }
}

/// Restores the previous precision when dropped (for tests and benchmarks that switch).
pub struct PrecisionGuard(Precision);

impl PrecisionGuard {
    pub fn set(p: Precision) -> Self {
        let old = precision();
        set_precision(p);
        Self(old)
    }
}

impl Drop for PrecisionGuard {
    fn drop(&mut self) {
        set_precision(self.0);
    }
}
