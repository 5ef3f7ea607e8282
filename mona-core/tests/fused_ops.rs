//! The fused CPU kernels (`mona_core::fused`) against the composed tensor ops they replace,
//! on the same module and inputs: outputs and the gradients of the input and of every
//! parameter agree to float32 rounding. Shapes are chosen to reach every branch: Swin's
//! head width 32 (the fused window attention), a shifted block's mask, grids that are not
//! window multiples (padding), a non-square Mona map, dropout in training mode, linear
//! layers over several output tiles in both directions (with and without bias, from a
//! strided input).

mod common;

use burn::tensor::{Distribution, Tensor, TensorData};
use common::{device, pseudo_random};
use mona_core::fused;
use mona_core::methods::Mona;
use mona_core::nn::{Linear, gelu_dropout};
use mona_core::swin::{WindowAttention, shifted_window_mask};
use mona_fixtures::rel_err;

fn ad_device() -> burn::tensor::Device {
    device().autodiff()
}

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<D> {
    let n = shape.iter().product();
    Tensor::from_data(
        TensorData::new(pseudo_random(n, seed, 1.0), shape),
        &ad_device(),
    )
}

/// The gradient of a parameter, as data.
macro_rules! grad {
    ($param:expr, $grads:expr) => {
        $param.val().grad($grads).expect("a gradient").into_data()
    };
}

fn assert_close(what: &str, fused: &TensorData, composed: &TensorData, tol: f64) {
    let e = rel_err(fused, composed);
    assert!(
        e < tol,
        "{what}: fused vs composed relative error {e:.3e} (tolerance {tol:e})"
    );
}

#[test]
fn window_attention_with_mask_matches_the_composed_ops() {
    let dev = ad_device();
    // Two heads of width 32; a 14×14 map: four 7×7 windows per image, two images.
    let attn = WindowAttention::new(64, 7, 2, true, None, 0.0, 0.0, None, &dev);
    let mask = Tensor::<3>::from_data(
        TensorData::new(shifted_window_mask(14, 14, 7, 3), [4, 49, 49]),
        &dev,
    );
    let weight = random([8, 49, 64], 2);
    let run = |masked: bool| {
        let x = random([8, 49, 64], 1).require_grad();
        let y = attn.forward(x.clone(), masked.then(|| mask.clone()), true);
        let grads = (y.clone() * weight.clone()).sum().backward();
        (
            y.into_data(),
            x.grad(&grads).expect("dx").into_data(),
            grad!(attn.qkv.weight, &grads),
            grad!(attn.relative_position_bias_table, &grads),
        )
    };
    for masked in [false, true] {
        let f = run(masked);
        let c = fused::composed(|| run(masked));
        let tag = if masked { "masked" } else { "unmasked" };
        assert_close(&format!("{tag} output"), &f.0, &c.0, 1e-5);
        assert_close(&format!("{tag} input grad"), &f.1, &c.1, 1e-5);
        assert_close(&format!("{tag} qkv weight grad"), &f.2, &c.2, 1e-5);
        assert_close(&format!("{tag} bias table grad"), &f.3, &c.3, 1e-5);
    }
}

#[test]
fn mona_on_a_non_square_map_matches_the_composed_ops() {
    let dev = ad_device();
    let mona = Mona::new(96, 64, 0.1, &dev);
    let (h, w) = (9, 11);
    let weight = random([2, h * w, 96], 4);
    let run = || {
        let x = random([2, h * w, 96], 3).require_grad();
        let y = mona.forward(x.clone(), (h, w), false);
        let grads = (y.clone() * weight.clone()).sum().backward();
        let conv = &mona.adapter_conv;
        vec![
            ("output", y.into_data()),
            ("input", x.grad(&grads).expect("dx").into_data()),
            ("conv1.weight", grad!(conv.conv1.weight, &grads)),
            (
                "conv2.bias",
                grad!(conv.conv2.bias.as_ref().expect("bias"), &grads),
            ),
            ("conv3.weight", grad!(conv.conv3.weight, &grads)),
            ("projector.weight", grad!(conv.projector.weight, &grads)),
            ("norm.weight", grad!(mona.norm.weight, &grads)),
            ("norm.bias", grad!(mona.norm.bias, &grads)),
            ("gamma", grad!(mona.gamma, &grads)),
            ("project1.weight", grad!(mona.project1.weight, &grads)),
        ]
    };
    let fused_run = run();
    let composed_run = fused::composed(run);
    for ((name, f), (_, c)) in fused_run.iter().zip(&composed_run) {
        assert_close(name, f, c, 1e-5);
    }
}

#[test]
fn linear_over_several_tiles_matches_the_composed_ops() {
    let dev = ad_device();
    // 2 × 700 = 1400 rows (two row tiles of the forward pass, eleven of the weight
    // gradient); 150 outputs and 70 inputs (three and two column tiles, partial ones last).
    for bias in [true, false] {
        let layer = Linear::torch_default(70, 150, bias, &dev);
        let weight = random([2, 700, 150], 7);
        let run = || {
            // A strided input: the fused op copies it to rows first.
            let x = random([700, 2, 70], 6).require_grad();
            let y = layer.forward(x.clone().swap_dims(0, 1));
            let grads = (y.clone() * weight.clone()).sum().backward();
            let mut out = vec![
                ("output", y.into_data()),
                ("input", x.grad(&grads).expect("dx").into_data()),
                ("weight", grad!(layer.weight, &grads)),
            ];
            if let Some(b) = &layer.bias {
                out.push(("bias", grad!(b, &grads)));
            }
            out
        };
        let fused_run = run();
        let composed_run = fused::composed(run);
        assert_eq!(fused_run.len(), composed_run.len());
        for ((name, f), (_, c)) in fused_run.iter().zip(&composed_run) {
            assert_close(&format!("{name} (bias {bias})"), f, c, 1e-5);
        }
    }
}

#[test]
fn fused_dropout_is_reproducible_keeps_the_asked_fraction_and_scales() {
    let dev = ad_device();
    let x = random([4, 1000, 64], 5);
    let draw = |seed: u64| {
        dev.seed(seed);
        gelu_dropout(x.clone(), 0.1, true)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32")
    };
    let (a, b, other) = (draw(7), draw(7), draw(8));
    assert_eq!(a, b, "the same seed draws the same mask");
    assert_ne!(a, other, "another seed draws another mask");
    let plain = gelu_dropout(x.clone(), 0.1, false)
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    let mut kept = 0usize;
    for (d, g) in a.iter().zip(&plain) {
        if *d != 0.0 {
            kept += 1;
            assert!(
                (d - g / 0.9).abs() <= 1e-6 * g.abs().max(1.0),
                "{d} vs {g}/0.9"
            );
        }
    }
    let fraction = kept as f64 / a.len() as f64;
    assert!((fraction - 0.9).abs() < 0.005, "kept {fraction}");
}

#[test]
fn fused_dropout_gradient_is_zero_where_dropped() {
    let dev = ad_device();
    dev.seed(11);
    let x = Tensor::<2>::random([64, 256], Distribution::Normal(0.0, 1.0), &dev).require_grad();
    let y = gelu_dropout(x.clone(), 0.5, true);
    let grads = y.clone().sum().backward();
    let dx = x
        .grad(&grads)
        .expect("dx")
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32");
    let y = y.into_data().try_to_vec::<f32>().expect("f32");
    let xs = x.into_data().try_to_vec::<f32>().expect("f32");
    let mut checked = 0;
    for ((g, out), v) in dx.iter().zip(&y).zip(&xs) {
        if *out == 0.0 && v.abs() > 1e-3 {
            assert_eq!(*g, 0.0, "a dropped element has no gradient");
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} dropped elements checked");
}
