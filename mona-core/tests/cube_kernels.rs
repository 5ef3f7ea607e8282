//! The fused ops' cubecl kernels against their flex counterparts: the same inputs on the
//! flex device and on cubecl's CPU runtime, forward values and gradients compared.
//!
//! Runs in a build with the `cubecl-cpu` feature (which brings the kernels), e.g.
//! `cargo test --release -p mona-core --features cubecl-cpu --test cube_kernels`.
#![cfg(feature = "cubecl-cpu")]

use burn::tensor::{Device, Tensor, TensorData};
use mona_core::fused::{self, DropMask};
use mona_core::random::Draw;

/// The two devices compared: flex (the reference) and cubecl's CPU runtime.
fn devices() -> [Device; 2] {
    [Device::flex().autodiff(), Device::cpu().autodiff()]
}

/// Reproducible values in about [-3, 3) (a linear congruential sequence).
fn values(shape: &[usize], seed: u64) -> TensorData {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let v = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 6.0 - 3.0
        })
        .collect::<Vec<_>>();
    TensorData::new(v, shape.to_vec())
}

fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// `Σ y ⊙ r` for a fixed pseudo-random `r`, so that every output element has its own
/// weight in the backward pass.
fn weighted_sum<const D: usize>(y: &Tensor<D>) -> Tensor<1> {
    let dims = y.dims();
    let r = Tensor::<D>::from_data(values(&dims, 99), &y.device());
    (y.clone() * r).sum()
}

/// The gradient of a tensor, as values.
macro_rules! grad {
    ($t:expr, $grads:expr) => {
        floats($t.grad($grads).expect("a gradient"))
    };
}

/// The largest difference between `a` and `b`, relative to `1 + |b|`.
fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0.0, f32::max)
}

/// Runs `f` on both devices and asserts that each of its outputs (forward values, then
/// gradients) agree within `tol`.
fn assert_same(what: &str, tol: f32, f: impl Fn(&Device) -> Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    let [reference, cube] = devices().map(|d| f(&d));
    for (i, (c, r)) in cube.iter().zip(&reference).enumerate() {
        let err = worst(c, r);
        assert!(
            err < tol,
            "{what}, output {i}: cubecl differs from flex by {err}"
        );
    }
    cube
}

#[test]
fn gelu_with_and_without_dropout_matches_flex() {
    let data = values(&[4, 37, 53], 1);
    let mask = DropMask {
        draw: Draw {
            seed: 0x1234_5678_9abc_def0,
            first_element: 77,
        },
        keep: 0.8,
    };
    for mask in [None, Some(mask)] {
        let outs = assert_same("gelu", 1e-6, |d| {
            let x = Tensor::<3>::from_data(data.clone(), d).require_grad();
            let y = fused::fused_gelu(x.clone(), mask);
            let grads = weighted_sum(&y).backward();
            vec![grad!(x, &grads), floats(y)]
        });
        let dropped = outs[1].iter().filter(|v| **v == 0.0).count() as f64 / outs[1].len() as f64;
        let want = if mask.is_some() { 0.2 } else { 0.0 };
        assert!((dropped - want).abs() < 0.02, "dropped {dropped}");
    }
}

#[test]
fn layer_norm_and_its_parameter_gradients_match_flex() {
    // 150 rows: two full blocks of the parameter sums and a partial one.
    let (xd, wd, bd) = (values(&[3, 50, 96], 2), values(&[96], 3), values(&[96], 4));
    for params in [true, false] {
        assert_same("layer norm", 2e-5, |d| {
            let x = Tensor::<3>::from_data(xd.clone(), d).require_grad();
            let mut w = Tensor::<1>::from_data(wd.clone(), d);
            let mut b = Tensor::<1>::from_data(bd.clone(), d);
            if params {
                (w, b) = (w.require_grad(), b.require_grad());
            }
            let y = fused::fused_layer_norm(x.clone(), w.clone(), b.clone(), 1e-5);
            let grads = weighted_sum(&y).backward();
            let mut outs = vec![floats(y), grad!(x, &grads)];
            if params {
                outs.extend([grad!(w, &grads), grad!(b, &grads)]);
            } else {
                assert!(w.grad(&grads).is_none() && b.grad(&grads).is_none());
            }
            outs
        });
    }
}

#[test]
fn depthwise_convolutions_of_mona_sizes_match_flex() {
    // Mona's kernels 3, 5 and 7 on a non-square map whose rows are not a block multiple.
    for (k, seed) in [(3, 10), (5, 20), (7, 30)] {
        let (xd, wd, bd) = (
            values(&[2, 9, 11, 16], seed),
            values(&[16, 1, k, k], seed + 1),
            values(&[16], seed + 2),
        );
        assert_same(&format!("depthwise {k}x{k}"), 2e-5, |d| {
            let x = Tensor::<4>::from_data(xd.clone(), d).require_grad();
            let w = Tensor::<4>::from_data(wd.clone(), d).require_grad();
            let b = Tensor::<1>::from_data(bd.clone(), d).require_grad();
            let y = fused::depthwise_nhwc(x.clone(), w.clone(), b.clone());
            let grads = weighted_sum(&y).backward();
            vec![
                floats(y),
                grad!(x, &grads),
                grad!(w, &grads),
                grad!(b, &grads),
            ]
        });
    }
}

#[test]
fn shifted_window_partition_and_its_inverse_match_flex() {
    // A 10×13 grid with window 7 and shift 3: padding, cyclic shift and partition.
    let map = fused::RowMap::window_partition(10, 13, 7, 3);
    let xd = values(&[2, 130, 8], 5);
    let outs = assert_same("window partition", 0.0 + f32::EPSILON, |d| {
        let x = Tensor::<3>::from_data(xd.clone(), d).require_grad();
        let windows = fused::gather_rows(x.clone(), map.clone());
        let back = fused::gather_rows(windows.clone() * 2.0, map.inverted());
        let grads = weighted_sum(&back).backward();
        vec![floats(windows), floats(back), grad!(x, &grads)]
    });
    // The round trip restores every token (doubled).
    let original = xd.clone().try_to_vec::<f32>().unwrap();
    assert!(outs[1].iter().zip(&original).all(|(b, x)| *b == 2.0 * x));
}
