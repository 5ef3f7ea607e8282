//! Parity with the golden PyTorch fixtures: every `*.json` of `$MONA_FIXTURES` (default
//! `../shared/fixtures`) is run by its `kind`; one line per fixture is printed (outside the
//! test harness's capture) and any failure, or an unknown kind, fails the test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::Arc;

use burn::tensor::Int;
use burn::tensor::{Device, Tensor, TensorData};
use mona_core::checkpoint::resize_bias_table;
use mona_core::config::Config;
use mona_core::fixtures::{
    FORWARD_TOL, Fixture, GRAD_TOL, fixtures_dir, list_fixtures, rel_err, report_tail,
};
use mona_core::methods::{Mona, build_method};
use mona_core::nn::gelu;
use mona_core::ops::cross_entropy::{CeReduction, pixel_cross_entropy};
use mona_core::ops::pool::adaptive_avg_pool2d;
use mona_core::ops::resize::{ResizeMode, resize};
use mona_core::params::{count, load_params, param_grads, param_infos};
use mona_core::swin::{SwinConfig, SwinTransformer};

/// The outcome of one fixture.
struct Outcome {
    method: String,
    out_err: f64,
    grad_err: f64,
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Outcome {
    fn new(method: &str) -> Self {
        Self {
            method: method.to_string(),
            out_err: 0.0,
            grad_err: 0.0,
            problems: Vec::new(),
            notes: Vec::new(),
        }
    }
    fn passed(&self) -> bool {
        self.problems.is_empty() && self.out_err <= FORWARD_TOL && self.grad_err <= GRAD_TOL
    }
}

fn device() -> Device {
    mona_core::fixtures::test_device()
}

fn tensor<const D: usize>(data: &TensorData, device: &Device) -> Tensor<D> {
    Tensor::from_data(data.clone().convert::<f32>(), device)
}

fn as_map(m: BTreeMap<String, TensorData>) -> HashMap<String, TensorData> {
    m.into_iter().collect()
}

/// Compares gradients: present exactly for `trainable` keys, each within tolerance.
fn check_grads(
    fx: &Fixture,
    grads: &BTreeMap<String, TensorData>,
    param_keys: &[String],
    trainable: &dyn Fn(&str) -> bool,
    out: &mut Outcome,
) {
    let expected = fx.with_prefix("grad.");
    for key in param_keys {
        match (trainable(key), grads.get(key), expected.get(key)) {
            (true, Some(g), Some(e)) => out.grad_err = out.grad_err.max(rel_err(g, e)),
            (true, None, _) => out
                .problems
                .push(format!("no gradient for trainable {key}")),
            (true, Some(_), None) => out.problems.push(format!(
                "{key} trains here but the fixture gives no gradient"
            )),
            (false, Some(_), _) => out.problems.push(format!("gradient for frozen {key}")),
            (false, None, Some(_)) => out.problems.push(format!(
                "{key} is frozen here but the fixture gives a gradient"
            )),
            (false, None, None) => {}
        }
    }
}

fn run_mona_module(fx: &Fixture) -> Outcome {
    let mut out = Outcome::new("mona");
    let dev = device();
    let dim = fx.json["dim"].as_u64().unwrap_or(0) as usize;
    let hidden = fx.json["hidden"].as_u64().unwrap_or(64) as usize;
    let hw = (
        fx.json["hw"][0].as_u64().unwrap_or(0) as usize,
        fx.json["hw"][1].as_u64().unwrap_or(0) as usize,
    );
    let module = Mona::new(dim, hidden, 0.1, &dev);
    let (module, loaded) = load_params(module, &as_map(fx.with_prefix("param.")));
    if !loaded.missing.is_empty() || !loaded.mismatched.is_empty() {
        out.problems.push(format!(
            "params: missing {:?}, mismatched {:?}",
            loaded.missing, loaded.mismatched
        ));
        return out;
    }
    let x: Tensor<3> = tensor::<3>(fx.tensor("input"), &dev).require_grad();
    let y = module.forward(x.clone(), hw, false);
    out.out_err = rel_err(&y.to_data(), fx.tensor("output"));
    let loss = (y * tensor::<3>(fx.tensor("loss_weight"), &dev)).sum();
    let grads = loss.backward();
    let input_grad = x.grad(&grads).map(|g| g.to_data());
    match input_grad {
        Some(g) => out.grad_err = rel_err(&g, fx.tensor("grad.input")),
        None => out.problems.push("no input gradient".into()),
    }
    let keys: Vec<String> = param_infos(&module).into_iter().map(|p| p.key).collect();
    check_grads(
        fx,
        &param_grads(&module, &grads),
        &keys,
        &|_| true,
        &mut out,
    );
    out
}

fn run_swin_backbone(fx: &Fixture) -> Outcome {
    let method_name = fx.json["method"].as_str().unwrap_or("?");
    let mut out = Outcome::new(method_name);
    let dev = device();
    let config: SwinConfig = match serde_json::from_value(fx.json["config"].clone()) {
        Ok(c) => c,
        Err(e) => {
            out.problems.push(format!("config: {e}"));
            return out;
        }
    };
    let method_cfg = Config::from_str_at(&format!("type = \"{method_name}\""), "fixture.toml")
        .expect("method config");
    let method = match build_method(&method_cfg.root()) {
        Ok(m) => Arc::from(m),
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    let model = SwinTransformer::new(&config, method, &dev).expect("backbone");
    let keys: Vec<String> = param_infos(&model).into_iter().map(|p| p.key).collect();
    let fixture_keys: BTreeSet<String> = fx.with_prefix("param.").into_keys().collect();
    let model_keys: BTreeSet<String> = keys.iter().cloned().collect();
    if fixture_keys != model_keys {
        out.problems.push(format!(
            "parameter keys differ: only in fixture {:?}, only in model {:?}",
            fixture_keys
                .difference(&model_keys)
                .take(5)
                .collect::<Vec<_>>(),
            model_keys
                .difference(&fixture_keys)
                .take(5)
                .collect::<Vec<_>>()
        ));
        return out;
    }
    let rule = |k: &str| model.trainable(k);
    let counted = count(&model, &rule);
    for (field, value) in [
        ("params_total", counted.total),
        ("params_trainable", counted.trainable),
    ] {
        if fx.json[field].as_u64() != Some(value as u64) {
            out.problems
                .push(format!("{field}: {value}, fixture says {}", fx.json[field]));
        }
    }
    let model = mona_core::params::set_trainable(model, &|k| rule_of(method_name, k));
    let (model, loaded) = load_params(model, &as_map(fx.with_prefix("param.")));
    if !loaded.mismatched.is_empty() {
        out.problems
            .push(format!("shape mismatches: {:?}", loaded.mismatched));
        return out;
    }
    let x: Tensor<4> = tensor::<4>(fx.tensor("input"), &dev).require_grad();
    let outputs = model.forward(x.clone(), false);
    let mut loss: Option<Tensor<1>> = None;
    for (i, y) in outputs.into_iter().enumerate() {
        out.out_err = out
            .out_err
            .max(rel_err(&y.to_data(), fx.tensor(&format!("output.{i}"))));
        let term = (y * tensor::<4>(fx.tensor(&format!("loss_weight.{i}")), &dev)).sum();
        loss = Some(match loss {
            Some(l) => l + term,
            None => term,
        });
    }
    let Some(loss) = loss else {
        out.problems.push("no outputs".into());
        return out;
    };
    let grads = loss.backward();
    match x.grad(&grads) {
        Some(g) => out.grad_err = rel_err(&g.to_data(), fx.tensor("grad.input")),
        None => out.problems.push("no input gradient".into()),
    }
    check_grads(
        fx,
        &param_grads(&model, &grads),
        &keys,
        &|k| rule_of(method_name, k),
        &mut out,
    );
    out
}

/// The method's rule, rebuilt by name (the model was moved into the freezing call).
fn rule_of(method: &str, key: &str) -> bool {
    let cfg = Config::from_str_at(&format!("type = \"{method}\""), "fixture.toml").expect("cfg");
    build_method(&cfg.root()).expect("method").trainable(key)
}

fn run_bias_table_resize(fx: &Fixture) -> Outcome {
    let mut out = Outcome::new("-");
    let input = fx.tensor("input");
    let expected = fx.tensor("output");
    let (rows, heads) = (input.shape()[0], input.shape()[1]);
    let values: Vec<f32> = input.clone().try_into_vec().unwrap_or_default();
    match resize_bias_table(&values, rows, heads, expected.shape()[0]) {
        Some(v) => {
            out.out_err = rel_err(&TensorData::new(v, [expected.shape()[0], heads]), expected)
        }
        None => out.problems.push("table is not square".into()),
    }
    out
}

/// Operation groups of the `ops` fixture that this crate implements, and how to check them.
fn run_ops(fx: &Fixture) -> Outcome {
    let mut out = Outcome::new("-");
    let dev = device();
    let groups: BTreeSet<String> = fx
        .tensors
        .keys()
        .map(|k| k.split('.').next().unwrap_or(k).to_string())
        .collect();
    for group in &groups {
        match group.as_str() {
            "gelu" => {
                let x = tensor::<1>(fx.tensor("gelu.input"), &dev).require_grad();
                let y = gelu(x.clone());
                out.out_err = out
                    .out_err
                    .max(rel_err(&y.to_data(), fx.tensor("gelu.output")));
                // The derivative of exact GELU is Φ(x) + x·φ(x); check the backward too.
                let grads = y.sum().backward();
                let g = x.grad(&grads).map(|g| g.to_data());
                let xs: Vec<f32> = fx
                    .tensor("gelu.input")
                    .clone()
                    .try_into_vec()
                    .unwrap_or_default();
                let expected: Vec<f32> = xs
                    .iter()
                    .map(|&v| {
                        let v = v as f64;
                        let cdf = 0.5 * (1.0 + libm_erf(v / std::f64::consts::SQRT_2));
                        let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
                        (cdf + v * pdf) as f32
                    })
                    .collect();
                match g {
                    Some(g) => {
                        out.grad_err = out
                            .grad_err
                            .max(rel_err(&g, &TensorData::new(expected, [xs.len()])))
                    }
                    None => out.problems.push("gelu: no gradient".into()),
                }
                out.notes.push("gelu".into());
            }
            "interp" => {
                let x = tensor::<4>(fx.tensor("interp.input"), &dev);
                for (key, data) in fx.with_prefix("interp.") {
                    let Some((mode, size)) = key.split_once('.') else {
                        continue;
                    };
                    let Some((h, w)) = size.split_once('x') else {
                        continue;
                    };
                    let (Ok(h), Ok(w)) = (h.parse::<usize>(), w.parse::<usize>()) else {
                        continue;
                    };
                    let mode = match mode {
                        "bilinear" => ResizeMode::Bilinear,
                        _ => ResizeMode::Nearest,
                    };
                    let y = resize(x.clone(), [h, w], mode);
                    out.out_err = out.out_err.max(rel_err(&y.to_data(), &data));
                }
                out.notes.push("interp".into());
            }
            "adaptive_avg_pool" => {
                let x = tensor::<4>(fx.tensor("interp.input"), &dev);
                for (key, data) in fx.with_prefix("adaptive_avg_pool.") {
                    let Ok(s) = key.parse::<usize>() else {
                        continue;
                    };
                    let y = adaptive_avg_pool2d(x.clone(), [s, s]);
                    out.out_err = out.out_err.max(rel_err(&y.to_data(), &data));
                }
                out.notes.push("adaptive_avg_pool".into());
            }
            "ce" => {
                let logits = tensor::<4>(fx.tensor("ce.logits"), &dev);
                let labels: Tensor<3, Int> =
                    Tensor::<3>::from_data(fx.tensor("ce.labels").clone().convert::<f32>(), &dev)
                        .int();
                let loss = pixel_cross_entropy(logits, labels, 255, CeReduction::MeanNonIgnored);
                out.out_err = out
                    .out_err
                    .max(rel_err(&loss.to_data(), fx.tensor("ce.loss_mean")));
                out.notes.push("ce".into());
            }
            "box_iou" => det_ops::box_iou(fx, &mut out),
            "nms" => det_ops::nms(fx, &mut out),
            "focal" => det_ops::focal(fx, &mut out, &dev),
            "roi_align" => det_ops::roi_align(fx, &mut out, &dev),
            other => out.notes.push(format!("{other}: not covered yet")),
        }
    }
    out
}

/// erf in f64 (Abramowitz–Stegun 7.1.26 is too coarse; use the series/continued fraction).
fn libm_erf(x: f64) -> f64 {
    // erf via the complementary error function's continued fraction for |x| > 3, series below.
    if x.abs() < 3.0 {
        let mut sum = x;
        let mut term = x;
        let x2 = x * x;
        for n in 1..200 {
            term *= -x2 / n as f64;
            sum += term / (2 * n + 1) as f64;
            if term.abs() < 1e-17 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let ax = x.abs();
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        let erfc = (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + f);
        x.signum() * (1.0 - erfc)
    }
}

#[test]
fn golden_fixtures() {
    let dir = fixtures_dir();
    let fixtures = list_fixtures(&dir).unwrap_or_else(|e| panic!("cannot list fixtures: {e}"));
    assert!(!fixtures.is_empty(), "no fixtures in {}", dir.display());
    let mut stderr = std::io::stderr();
    let mut failed = Vec::new();
    for fx in &fixtures {
        let outcome = match fx.kind() {
            "mona_module" => run_mona_module(fx),
            "swin_backbone" => run_swin_backbone(fx),
            "bias_table_resize" => run_bias_table_resize(fx),
            "ops" => run_ops(fx),
            other => {
                let mut o = Outcome::new("-");
                o.problems.push(format!("unknown fixture kind `{other}`"));
                o
            }
        };
        let verdict = if outcome.passed() { "PASS" } else { "FAIL" };
        let _ = writeln!(
            stderr,
            "fixture {:<28} kind {:<17} method {:<12} output rel err {:.2e}  grad rel err {:.2e}  {verdict}{}",
            fx.name,
            fx.kind(),
            outcome.method,
            outcome.out_err,
            outcome.grad_err,
            report_tail(&outcome.notes, &outcome.problems),
        );
        if !outcome.passed() {
            failed.push(fx.name.clone());
        }
    }
    assert!(failed.is_empty(), "fixtures failed: {failed:?}");
}

/// The detection groups of the `ops` fixture: box IoU, (batched) NMS, sigmoid focal loss.
mod det_ops {
    use super::{Fixture, Outcome, rel_err, tensor};
    use burn::tensor::{Device, TensorData};
    use mona_core::ops::boxes::{OverlapMode, bbox_overlaps, boxes_from_flat};
    use mona_core::ops::focal_loss::sigmoid_focal_loss;
    use mona_core::ops::nms::{batched_nms, nms as mmcv_nms};
    use mona_core::ops::roi_align::{Roi, RoiAlignConfig, reference, roi_align as roi_align_op};

    fn floats(fx: &Fixture, key: &str) -> Vec<f32> {
        fx.floats(key)
    }

    /// `box_iou` = IoU of `nms.boxes[0..10]` against `nms.boxes[10..25]`.
    pub fn box_iou(fx: &Fixture, out: &mut Outcome) {
        let boxes = boxes_from_flat(&floats(fx, "nms.boxes"));
        let expected = fx.tensor("box_iou");
        let [n, m] = [expected.shape()[0], expected.shape()[1]];
        if boxes.len() < n + m {
            out.problems.push("box_iou: too few boxes".into());
            return;
        }
        let iou = bbox_overlaps(&boxes[..n], &boxes[n..n + m], OverlapMode::Iou);
        out.out_err = out
            .out_err
            .max(rel_err(&TensorData::new(iou, [n, m]), expected));
        out.notes.push("box_iou".into());
    }

    pub fn nms(fx: &Fixture, out: &mut Outcome) {
        let boxes = boxes_from_flat(&floats(fx, "nms.boxes"));
        let scores = floats(fx, "nms.scores");
        let labels: Vec<usize> = floats(fx, "nms.labels")
            .iter()
            .map(|&l| l as usize)
            .collect();
        let as_idx = |v: Vec<f32>| v.into_iter().map(|x| x as usize).collect::<Vec<_>>();
        let keep = mmcv_nms(&boxes, &scores, 0.5);
        if keep != as_idx(floats(fx, "nms.keep")) {
            out.problems.push(format!("nms keep differs: {keep:?}"));
        }
        let batched = batched_nms(&boxes, &scores, &labels, 0.5);
        if batched != as_idx(floats(fx, "nms.batched_keep")) {
            out.problems
                .push(format!("batched nms keep differs: {batched:?}"));
        }
        out.notes.push("nms".into());
    }

    pub fn focal(fx: &Fixture, out: &mut Outcome, dev: &Device) {
        let x = tensor::<2>(fx.tensor("focal.logits"), dev).require_grad();
        let t = tensor::<2>(fx.tensor("focal.targets"), dev);
        let loss = sigmoid_focal_loss(x.clone(), t, 0.25, 2.0);
        out.out_err = out
            .out_err
            .max(rel_err(&loss.to_data(), fx.tensor("focal.loss")));
        if x.grad(&loss.sum().backward()).is_none() {
            out.problems.push("focal: no gradient".into());
        }
        out.notes.push("focal".into());
    }

    /// `roi_align.out.<size>.<sampling_ratio>` (spatial scale 0.25, aligned) for every case
    /// present. The fixture has no gradients, so the backward (autodiff through the gather
    /// and matmuls) is checked against a port of mmcv's backward kernel, for a fixed random
    /// output weight. Per-case errors go into the notes.
    pub fn roi_align(fx: &Fixture, out: &mut Outcome, dev: &Device) {
        let feat = fx.tensor("roi_align.feature");
        let dims: [usize; 4] = match feat.shape()[..] {
            [a, b, c, d] => [a, b, c, d],
            _ => {
                out.problems.push("roi_align: feature is not 4-D".into());
                return;
            }
        };
        let values = floats(fx, "roi_align.feature");
        let f64s: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let rois: Vec<Roi> = floats(fx, "roi_align.rois")
            .chunks_exact(5)
            .map(|r| [r[0], r[1], r[2], r[3], r[4]])
            .collect();
        for (key, expected) in fx.with_prefix("roi_align.out.") {
            let Some((size, ratio)) = key.split_once('.') else {
                continue;
            };
            let (Ok(size), Ok(ratio)) = (size.parse::<usize>(), ratio.parse::<usize>()) else {
                out.problems.push(format!("roi_align: bad case name {key}"));
                continue;
            };
            let cfg = RoiAlignConfig::new(size, 0.25, ratio);
            let x = tensor::<4>(feat, dev).require_grad();
            let y = match roi_align_op(x.clone(), &rois, &cfg) {
                Ok(y) => y,
                Err(e) => {
                    out.problems.push(e.to_string());
                    continue;
                }
            };
            let fwd = rel_err(&y.to_data(), &expected);
            // backward against mmcv's kernel, for L = sum(y * w) with w in [-1, 1)
            let n: usize = y.dims().iter().product();
            let w: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 + 13) % 2003) as f32 / 1001.5 - 1.0)
                .collect();
            let wt =
                burn::tensor::Tensor::<4>::from_data(TensorData::new(w.clone(), y.dims()), dev);
            let grads = (y * wt).sum().backward();
            let w64: Vec<f64> = w.iter().map(|&v| v as f64).collect();
            let eg = reference::backward(&w64, dims, &rois, &cfg);
            let eg = TensorData::new(eg.iter().map(|&v| v as f32).collect::<Vec<_>>(), dims);
            let bwd = match x.grad(&grads) {
                Some(g) => rel_err(&g.to_data(), &eg),
                None => {
                    out.problems.push("roi_align: no feature gradient".into());
                    f64::INFINITY
                }
            };
            // and the reference forward agrees with the fixture (guards the reference itself)
            let rf = reference::forward(&f64s, dims, &rois, &cfg);
            let rf = TensorData::new(
                rf.iter().map(|&v| v as f32).collect::<Vec<_>>(),
                expected.shape().to_vec(),
            );
            let ref_err = rel_err(&rf, &expected);
            out.out_err = out.out_err.max(fwd).max(ref_err);
            out.grad_err = out.grad_err.max(bwd);
            out.notes.push(format!(
                "roi_align {size}x{size} sr{ratio}: fwd {fwd:.1e} bwd {bwd:.1e} (ref fwd {ref_err:.1e})"
            ));
        }
    }
}
