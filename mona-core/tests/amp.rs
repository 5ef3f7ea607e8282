//! Mixed precision: with bf16 autocast the tiny Swin + Mona of the `swin_mona_tiny` fixture
//! still reproduces PyTorch's float32 outputs and gradients to bf16 accuracy, the gradients
//! reach the float32 master weights as float32, and turning autocast off restores float32
//! results bit for bit. One test per binary: the precision is process-wide.

mod common;

use std::collections::HashMap;

use burn::tensor::{DType, Tensor};
use common::{fixture, fixture_config, method};
use mona_core::checkpoint::StateDict;
use mona_core::nn::amp::{Precision, PrecisionGuard, precision};
use mona_core::params::{load_params, param_grads, set_trainable};
use mona_core::swin::SwinTransformer;
use mona_fixtures::rel_err;

#[test]
fn bf16_autocast_matches_float32_to_bf16_accuracy() {
    let sd = StateDict::read(fixture("swin_mona_tiny.safetensors")).expect("fixture");
    let params: HashMap<_, _> = sd
        .tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("param.").map(|k| (k.to_string(), v.clone())))
        .collect();
    let input = sd.tensors["input"].clone().convert::<f32>();
    let device = burn::tensor::Device::flex().autodiff();
    let run = |p: Precision| {
        let _guard = PrecisionGuard::set(p);
        let model =
            SwinTransformer::new(&fixture_config("swin_mona_tiny"), method("mona"), &device)
                .expect("backbone");
        let rules = model.clone();
        let model = set_trainable(model, &|k| rules.trainable(k));
        let (model, loaded) = load_params(model, &params);
        assert!(loaded.mismatched.is_empty() && loaded.missing.is_empty());
        let x = Tensor::<4>::from_data(input.clone(), &device);
        let outs = model.forward(x, false);
        let loss = outs
            .iter()
            .map(|y| (y.clone() * y.clone()).mean())
            .reduce(|a, b| a + b)
            .expect("outputs");
        let grads = loss.backward();
        let g = param_grads(&model, &grads);
        let outs: Vec<_> = outs.into_iter().map(|y| y.into_data()).collect();
        (outs, g)
    };
    let (out32, g32) = run(Precision::Fp32);
    let (out16, g16) = run(Precision::Bf16);
    assert_eq!(
        precision(),
        Precision::Fp32,
        "the guard restores the precision"
    );
    let (again, _) = run(Precision::Fp32);
    for (a, b) in out32.iter().zip(&again) {
        assert_eq!(a, b, "float32 after a bf16 run is bit-identical");
    }
    for (i, (a, b)) in out32.iter().zip(&out16).enumerate() {
        assert_eq!(b.dtype(), DType::F32, "outputs are float32");
        let e = rel_err(b, a);
        // bf16 keeps 8 mantissa bits (relative step 2^-8 = 3.9e-3).
        assert!(e < 3e-2, "output {i}: rel err {e:.2e}");
        assert!(e > 1e-6, "output {i}: bf16 had no effect (rel err {e:.2e})");
    }
    assert_eq!(
        g32.keys().collect::<Vec<_>>(),
        g16.keys().collect::<Vec<_>>()
    );
    assert!(!g32.is_empty());
    let mut worst = 0.0f64;
    for (k, a) in &g32 {
        let b = &g16[k];
        assert_eq!(b.dtype(), DType::F32, "{k}: master gradients are float32");
        worst = worst.max(rel_err(b, a));
    }
    assert!(worst < 8e-2, "worst gradient rel err {worst:.2e}");
}

#[test]
fn precision_names_parse_with_a_clear_error() {
    assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
    assert_eq!("fp32".parse::<Precision>(), Ok(Precision::Fp32));
    assert_eq!(
        "fp16".parse::<Precision>().unwrap_err(),
        "unknown precision `fp16`: expected fp32 or bf16 (f16 would need loss scaling, which is not implemented)"
    );
}
