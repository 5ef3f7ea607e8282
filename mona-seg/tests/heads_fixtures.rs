//! Parity of `UPerHead` / `FCNHead` with mmseg 1.2.2 (`shared/fixtures/heads`, cases found by
//! their JSON `kind`): forward in eval mode, gradients of every parameter and input for
//! `L = Σ output · loss_weight`. One PASS/FAIL line per case.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use mona_core::nn::{BatchNorm2d, BatchNormKind};
use mona_core::params::{load_params, param_grads, param_infos};
use mona_fixtures::{FORWARD_TOL, Fixture, GRAD_TOL, fixtures_dir, list_fixtures, rel_err};
use mona_seg::{FCNHead, UPerHead};

fn device() -> Device {
    mona_fixtures::test_device()
}

fn tensor(data: &TensorData, device: &Device) -> Tensor<4> {
    Tensor::from_data(data.clone().convert::<f32>(), device)
}

fn cfg_usize(fx: &Fixture, key: &str) -> usize {
    fx.json["config"][key].as_u64().unwrap_or(0) as usize
}

fn cfg_vec(fx: &Fixture, key: &str) -> Vec<usize> {
    fx.json["config"][key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_u64())
                .map(|v| v as usize)
                .collect()
        })
        .unwrap_or_default()
}

/// Loads params, runs `forward`, compares output and gradients; returns (out err, grad err,
/// problems).
fn check<M: Module>(
    fx: &Fixture,
    module: M,
    forward: impl Fn(&M, &[Tensor<4>]) -> Tensor<4>,
) -> (f64, f64, Vec<String>) {
    let dev = device();
    let mut problems = Vec::new();
    let params: HashMap<String, TensorData> = fx.with_prefix("param.").into_iter().collect();
    let (module, loaded) = load_params(module, &params);
    if !loaded.missing.is_empty() || !loaded.mismatched.is_empty() {
        problems.push(format!(
            "params: missing {:?}, mismatched {:?}",
            loaded.missing, loaded.mismatched
        ));
        return (f64::INFINITY, f64::INFINITY, problems);
    }
    let keys: Vec<String> = param_infos(&module).into_iter().map(|p| p.key).collect();
    for k in params.keys() {
        if !keys.contains(k) {
            problems.push(format!("fixture param {k} not in the module"));
        }
    }
    let inputs: Vec<Tensor<4>> = (0..4)
        .map(|i| tensor(fx.tensor(&format!("input.{i}")), &dev).require_grad())
        .collect();
    let y = forward(&module, &inputs);
    let out_err = rel_err(&y.to_data(), fx.tensor("output.0"));
    let loss = (y * tensor(fx.tensor("loss_weight.0"), &dev)).sum();
    let grads = loss.backward();
    let mut grad_err = 0f64;
    for (i, x) in inputs.iter().enumerate() {
        let expected = fx.tensor(&format!("grad.input.{i}"));
        let g = x
            .grad(&grads)
            .map(|g| g.to_data())
            .unwrap_or_else(|| TensorData::zeros::<f32, _>(expected.shape().clone()));
        grad_err = grad_err.max(rel_err(&g, expected));
    }
    let got: BTreeMap<String, TensorData> = param_grads(&module, &grads);
    let expected = fx.with_prefix("grad.param.");
    for key in keys.iter().filter(|k| !BatchNorm2d::is_buffer(k)) {
        match (got.get(key), expected.get(key)) {
            (Some(g), Some(e)) => grad_err = grad_err.max(rel_err(g, e)),
            (None, _) => problems.push(format!("no gradient for {key}")),
            (Some(_), None) => problems.push(format!("fixture has no gradient for {key}")),
        }
    }
    (out_err, grad_err, problems)
}

#[test]
fn heads_fixtures() {
    let dir = fixtures_dir().join("heads");
    let fixtures = list_fixtures(&dir).unwrap_or_else(|e| panic!("cannot list fixtures: {e}"));
    let dev = device();
    let mut failed = Vec::new();
    let mut ran = 0;
    let mut stderr = std::io::stderr();
    for fx in &fixtures {
        let result = match fx.kind() {
            "mmseg.UPerHead" => {
                let head = UPerHead::new(
                    &cfg_vec(fx, "in_channels"),
                    cfg_vec(fx, "in_index"),
                    cfg_usize(fx, "channels"),
                    cfg_vec(fx, "pool_scales"),
                    cfg_usize(fx, "num_classes"),
                    0.1,
                    Some(BatchNormKind::Sync),
                    &dev,
                );
                check(fx, head, |m, x| m.forward(x, false))
            }
            "mmseg.FCNHead" => {
                let head = FCNHead::new(
                    cfg_usize(fx, "in_channels"),
                    cfg_usize(fx, "in_index"),
                    cfg_usize(fx, "channels"),
                    cfg_usize(fx, "num_convs"),
                    3,
                    cfg_usize(fx, "num_classes"),
                    0.1,
                    Some(BatchNormKind::Sync),
                    &dev,
                );
                check(fx, head, |m, x| m.forward(x, false))
            }
            _ => continue,
        };
        ran += 1;
        let (out_err, grad_err, problems) = result;
        let pass = problems.is_empty() && out_err <= FORWARD_TOL && grad_err <= GRAD_TOL;
        let _ = writeln!(
            stderr,
            "fixture {:<12} kind {:<16} output rel err {out_err:.2e}  grad rel err {grad_err:.2e}  {}{}",
            fx.name,
            fx.kind(),
            if pass { "PASS" } else { "FAIL" },
            if problems.is_empty() {
                String::new()
            } else {
                format!("  {problems:?}")
            }
        );
        if !pass {
            failed.push(fx.name.clone());
        }
    }
    assert_eq!(
        ran,
        2,
        "expected the uper_head and fcn_head cases in {}",
        dir.display()
    );
    assert!(failed.is_empty(), "failed: {failed:?}");
}
