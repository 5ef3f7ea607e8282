//! The benchmark cases: the GPU table's rows, the CPU cases, and custom ones from the
//! command line.

use mona_core::nn::amp::Precision;
use serde::Serialize;

/// One benchmark case.
#[derive(Clone, Debug, Serialize)]
pub struct BenchCase {
    pub name: String,
    /// Swin preset: `swin_t`, `swin_b`, `swin_l`.
    pub arch: String,
    /// Tuning method type (`mona`, `full`).
    pub method: String,
    /// Training step (true) or inference batch.
    pub train: bool,
    pub batch: usize,
    pub size: usize,
    pub precision: Precision,
    /// FALLBACK, NOT A COMPARISON: the official PyTorch code's images/s as measured once,
    /// on another day, on `fallback_measured_on`; `None` where it was never measured. Kept so
    /// that a machine without PyTorch still shows roughly where the official code stood;
    /// `scripts/bench-vs-pytorch.sh` measures both sides side by side.
    pub fallback_pytorch_images_per_s: Option<f64>,
    /// The same day's PyTorch peak memory in GiB (CUDA allocator), where measured.
    pub fallback_pytorch_peak_gib: Option<f64>,
    /// Where and how the fallback numbers were measured.
    pub fallback_measured_on: &'static str,
}

const H200: &str = "NVIDIA H200, torch 2.11, eager";

#[allow(clippy::too_many_arguments)]
fn gpu(
    name: &str,
    arch: &str,
    method: &str,
    train: bool,
    batch: usize,
    size: usize,
    precision: Precision,
    img_s: f64,
    gib: f64,
) -> BenchCase {
    BenchCase {
        name: name.into(),
        arch: arch.into(),
        method: method.into(),
        train,
        batch,
        size,
        precision,
        fallback_pytorch_images_per_s: Some(img_s),
        fallback_pytorch_peak_gib: Some(gib),
        fallback_measured_on: H200,
    }
}

/// The GPU table of the issue (PyTorch on one H200).
pub fn gpu_cases() -> Vec<BenchCase> {
    use Precision::{Bf16, Fp32};
    vec![
        gpu(
            "swin_b_mona_train_b32_224_fp32",
            "swin_b",
            "mona",
            true,
            32,
            224,
            Fp32,
            259.8,
            7.44,
        ),
        gpu(
            "swin_b_mona_train_b32_224_bf16",
            "swin_b",
            "mona",
            true,
            32,
            224,
            Bf16,
            254.0,
            6.14,
        ),
        gpu(
            "swin_b_full_train_b32_224_fp32",
            "swin_b",
            "full",
            true,
            32,
            224,
            Fp32,
            317.9,
            8.38,
        ),
        gpu(
            "swin_l_mona_train_b32_224_fp32",
            "swin_l",
            "mona",
            true,
            32,
            224,
            Fp32,
            164.5,
            10.95,
        ),
        gpu(
            "swin_l_mona_train_b32_224_bf16",
            "swin_l",
            "mona",
            true,
            32,
            224,
            Bf16,
            248.8,
            9.32,
        ),
        gpu(
            "swin_l_mona_train_b4_512_fp32",
            "swin_l",
            "mona",
            true,
            4,
            512,
            Fp32,
            29.0,
            7.70,
        ),
        gpu(
            "swin_b_mona_infer_b64_224_fp32",
            "swin_b",
            "mona",
            false,
            64,
            224,
            Fp32,
            770.2,
            1.69,
        ),
        gpu(
            "swin_b_mona_infer_b64_224_bf16",
            "swin_b",
            "mona",
            false,
            64,
            224,
            Bf16,
            1531.1,
            1.29,
        ),
    ]
}

/// The CPU cases: the classification issue's Mona training step and inference batch (its
/// fallback PyTorch numbers, with 2 threads on the 2-core development machine: 438.9 ms per
/// training step, 134.7 ms per inference batch), and training steps of the full, LoRA and
/// Adapter baselines at the same shape, which show whether a gap is Mona's own or the
/// backbone's (no fallback numbers: `scripts/bench-vs-pytorch.sh` measures PyTorch).
pub fn cpu_cases() -> Vec<BenchCase> {
    let base = BenchCase {
        name: "swin_t_mona_train_b2_224_cpu".into(),
        arch: "swin_t".into(),
        method: "mona".into(),
        train: true,
        batch: 2,
        size: 224,
        precision: Precision::Fp32,
        fallback_pytorch_images_per_s: Some(2.0 / 0.4389),
        fallback_pytorch_peak_gib: None,
        fallback_measured_on: "2-core x86-64 development machine, PyTorch CPU, 2 threads",
    };
    let baseline = |method: &str| BenchCase {
        name: format!("swin_t_{method}_train_b2_224_cpu"),
        method: method.into(),
        fallback_pytorch_images_per_s: None,
        fallback_measured_on: "none",
        ..base.clone()
    };
    vec![
        base.clone(),
        BenchCase {
            name: "swin_t_mona_infer_b2_224_cpu".into(),
            train: false,
            fallback_pytorch_images_per_s: Some(2.0 / 0.1347),
            ..base.clone()
        },
        baseline("full"),
        baseline("lora"),
        baseline("adapter"),
    ]
}

/// A case from `ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]`, without fallback PyTorch
/// numbers.
pub fn custom_case(spec: &str) -> Result<BenchCase, String> {
    let parts: Vec<&str> = spec.split(':').collect();
    let bad = || format!("--custom {spec}: expected ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]");
    if parts.len() < 5 || parts.len() > 6 {
        return Err(bad());
    }
    Ok(BenchCase {
        name: spec.into(),
        arch: parts[0].into(),
        method: parts[1].into(),
        train: match parts[2] {
            "train" => true,
            "infer" => false,
            _ => return Err(bad()),
        },
        batch: parts[3].parse().map_err(|_| bad())?,
        size: parts[4].parse().map_err(|_| bad())?,
        precision: match parts.get(5) {
            Some(p) => p.parse()?,
            None => Precision::Fp32,
        },
        fallback_pytorch_images_per_s: None,
        fallback_pytorch_peak_gib: None,
        fallback_measured_on: "none (custom case)",
    })
}

/// Every case, by name.
pub fn all_cases() -> Vec<BenchCase> {
    let mut cases = gpu_cases();
    cases.extend(cpu_cases());
    cases
}
