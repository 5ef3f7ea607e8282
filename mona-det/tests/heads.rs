//! Parity with the golden mmdet head fixtures: every `*.json` of `$MONA_FIXTURES/heads`
//! (default `../shared/fixtures/heads`) is run by its `kind`; one line per case is printed
//! (outside the harness's capture). Kinds checked elsewhere are listed with the test that
//! checks them (cascade box / mask heads: tests/cascade_bbox_head.rs and
//! tests/cascade_mask_head.rs; segmentation heads: mona-seg); any failure fails the test.

use std::io::Write;

use burn::module::Module;
use burn::tensor::TensorData;
use burn::tensor::{Device, Tensor};
use mona_core::params::{load_params, param_grads};
use mona_det::fpn::{Fpn, FpnConfig};
use mona_det::ops::boxes::{Box4, boxes_from_flat};
use mona_det::retina::{GtInstances, ImageMeta, RetinaHead, RetinaHeadConfig, RetinaLogic};
use mona_det::{
    AnchorGenerator, AnchorGeneratorConfig, DeltaCoderConfig, DeltaXYWHBBoxCoder, MaxIoUAssigner,
    MaxIoUAssignerConfig,
};
use mona_fixtures::{
    FORWARD_TOL, Fixture, GRAD_TOL, fixtures_dir, list_fixtures, rel_err, report_tail,
};

#[derive(Default)]
struct Outcome {
    out_err: f64,
    grad_err: f64,
    problems: Vec<String>,
    notes: Vec<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.problems.is_empty() && self.out_err <= FORWARD_TOL && self.grad_err <= GRAD_TOL
    }
    fn compare(&mut self, actual: TensorData, fx: &Fixture, key: &str) {
        self.out_err = self.out_err.max(rel_err(&actual, fx.tensor(key)));
    }
}

fn floats(fx: &Fixture, key: &str) -> Vec<f32> {
    fx.floats(key)
}

fn boxes(fx: &Fixture, key: &str) -> Vec<Box4> {
    if fx.tensors.contains_key(key) {
        boxes_from_flat(&floats(fx, key))
    } else {
        Vec::new()
    }
}

fn flat(b: &[Box4]) -> TensorData {
    TensorData::new(
        b.iter().flatten().copied().collect::<Vec<f32>>(),
        [b.len(), 4],
    )
}

fn config<T: serde::de::DeserializeOwned>(fx: &Fixture, out: &mut Outcome) -> Option<T> {
    match serde_json::from_value(fx.json["config"].clone()) {
        Ok(c) => Some(c),
        Err(e) => {
            out.problems.push(format!("config: {e}"));
            None
        }
    }
}

fn sizes(v: &serde_json::Value) -> Vec<(usize, usize)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_u64().unwrap_or(0) as usize,
                        p[1].as_u64().unwrap_or(0) as usize,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn run_anchors(fx: &Fixture) -> Outcome {
    let mut out = Outcome::default();
    let Some(cfg) = config::<AnchorGeneratorConfig>(fx, &mut out) else {
        return out;
    };
    let generator = match AnchorGenerator::new(&cfg) {
        Ok(g) => g,
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    let feats = sizes(&fx.json["featmap_sizes"]);
    for (l, &hw) in feats.iter().enumerate() {
        let base: Vec<Box4> = generator.base_anchors[l]
            .iter()
            .map(|b| b.map(|v| v as f32))
            .collect();
        out.compare(flat(&base), fx, &format!("output.base_anchors.{l}"));
        out.compare(
            flat(&generator.grid_anchors(l, hw)),
            fx,
            &format!("output.anchors.{l}"),
        );
        let f64s: Vec<Box4> = generator
            .grid_anchors_f64(l, hw)
            .iter()
            .map(|b| b.map(|v| v as f32))
            .collect();
        out.compare(flat(&f64s), fx, &format!("output.anchors_f64.{l}"));
        for (j, &pad) in sizes(&fx.json["pad_shapes"]).iter().enumerate() {
            let flags = generator.valid_flags(l, hw, pad);
            let expected = floats(fx, &format!("output.valid_flags.img{j}.{l}"));
            let actual: Vec<f32> = flags.iter().map(|&f| f as u8 as f32).collect();
            if actual != expected {
                out.problems
                    .push(format!("valid flags of img {j} level {l} differ"));
            }
        }
    }
    out
}

fn run_coder(fx: &Fixture) -> Outcome {
    let mut out = Outcome::default();
    let Some(cfg) = config::<DeltaCoderConfig>(fx, &mut out) else {
        return out;
    };
    let coder = DeltaXYWHBBoxCoder::new(cfg);
    let max_shape = sizes(&serde_json::json!([fx.json["max_shape"]]))[0];
    let (rois_key, encoded_key) = if fx.tensors.contains_key("input.rois") {
        ("input.rois", "output.encoded")
    } else {
        ("input.proposals", "output.encoded_deltas")
    };
    let rois = boxes(fx, rois_key);
    let gts = boxes(fx, "input.gt_bboxes");
    let encoded: Vec<Box4> = rois
        .iter()
        .zip(&gts)
        .map(|(p, g)| coder.encode(p, g))
        .collect();
    out.compare(flat(&encoded), fx, encoded_key);
    if fx.tensors.contains_key("output.decoded_roundtrip") {
        let back: Vec<Box4> = rois
            .iter()
            .zip(&encoded)
            .map(|(p, d)| coder.decode(p, d, None))
            .collect();
        out.compare(flat(&back), fx, "output.decoded_roundtrip");
    }
    // deltas (N, 4·C): every class block decodes against the same roi
    let deltas = floats(fx, "input.deltas");
    let per_row = deltas.len() / rois.len().max(1);
    for (key, shape) in [
        ("output.decoded_clamped", Some(max_shape)),
        ("output.decoded_unclamped", None),
    ] {
        let mut decoded = Vec::with_capacity(deltas.len());
        for (i, roi) in rois.iter().enumerate() {
            for d in deltas[i * per_row..(i + 1) * per_row].chunks_exact(4) {
                decoded.extend(coder.decode(roi, &[d[0], d[1], d[2], d[3]], shape));
            }
        }
        out.compare(TensorData::new(decoded, [rois.len(), per_row]), fx, key);
    }
    out
}

fn run_assigner(fx: &Fixture) -> Outcome {
    let mut out = Outcome::default();
    let Some(cfg) = config::<MaxIoUAssignerConfig>(fx, &mut out) else {
        return out;
    };
    let assigner = MaxIoUAssigner::new(cfg);
    let labels: Vec<i64> = if fx.tensors.contains_key("input.gt_labels") {
        floats(fx, "input.gt_labels")
            .iter()
            .map(|&l| l as i64)
            .collect()
    } else {
        Vec::new()
    };
    let result = assigner.assign(
        &boxes(fx, "input.priors"),
        &boxes(fx, "input.gt_bboxes"),
        &labels,
        &boxes(fx, "input.gt_bboxes_ignore"),
    );
    let as_f32 = |v: &[i64]| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    if as_f32(&result.gt_inds) != floats(fx, "output.gt_inds") {
        out.problems
            .push(format!("gt_inds differ: {:?}", result.gt_inds));
    }
    if as_f32(&result.labels) != floats(fx, "output.labels") {
        out.problems
            .push(format!("labels differ: {:?}", result.labels));
    }
    let n = result.max_overlaps.len();
    out.compare(
        TensorData::new(result.max_overlaps, [n]),
        fx,
        "output.max_overlaps",
    );
    out
}

fn device() -> Device {
    mona_fixtures::test_device()
}

fn tensor<const D: usize>(fx: &Fixture, key: &str, dev: &Device) -> Tensor<D> {
    Tensor::from_data(fx.tensor(key).clone().convert::<f32>(), dev)
}

/// Loads `param.*` into `module`, reporting missing / mismatched keys.
fn load<M: Module>(module: M, fx: &Fixture, out: &mut Outcome) -> M {
    let params = fx.with_prefix("param.").into_iter().collect();
    let (module, loaded) = load_params(module, &params);
    if !loaded.missing.is_empty() || !loaded.mismatched.is_empty() {
        out.problems.push(format!(
            "params: missing {:?}, mismatched {:?}",
            loaded.missing, loaded.mismatched
        ));
    }
    module
}

/// `L = Σ sum(output.i · loss_weight.i)`, compares outputs, then every `grad.param.*` and
/// `grad.input.*` (inputs given in order).
fn check_module<M: Module>(
    fx: &Fixture,
    module: &M,
    inputs: &[Tensor<4>],
    outputs: Vec<Tensor<4>>,
    out: &mut Outcome,
) {
    let dev = device();
    let mut loss: Option<Tensor<1>> = None;
    for (i, y) in outputs.into_iter().enumerate() {
        out.compare(y.to_data(), fx, &format!("output.{i}"));
        let term = (y * tensor::<4>(fx, &format!("loss_weight.{i}"), &dev)).sum();
        loss = Some(match loss {
            Some(l) => l + term,
            None => term,
        });
    }
    let Some(loss) = loss else {
        out.problems.push("no outputs".into());
        return;
    };
    let grads = loss.backward();
    let actual = param_grads(module, &grads);
    for (key, expected) in fx.with_prefix("grad.param.") {
        match actual.get(&key) {
            Some(g) => out.grad_err = out.grad_err.max(rel_err(g, &expected)),
            None => out.problems.push(format!("no gradient for {key}")),
        }
    }
    for (i, x) in inputs.iter().enumerate() {
        let expected = fx.tensor(&format!("grad.input.{i}"));
        match x.grad(&grads) {
            Some(g) => out.grad_err = out.grad_err.max(rel_err(&g.to_data(), expected)),
            None if floats(fx, &format!("grad.input.{i}"))
                .iter()
                .all(|&v| v == 0.0) => {}
            None => out.problems.push(format!("no gradient for input {i}")),
        }
    }
}

fn inputs(fx: &Fixture, prefix: &str, dev: &Device) -> Vec<Tensor<4>> {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .take_while(|k| fx.tensors.contains_key(k))
        .map(|k| tensor::<4>(fx, &k, dev).require_grad())
        .collect()
}

fn run_fpn(fx: &Fixture) -> Outcome {
    let mut out = Outcome::default();
    let dev = device();
    let Some(cfg) = config::<FpnConfig>(fx, &mut out) else {
        return out;
    };
    let fpn = match Fpn::new(&cfg, &dev) {
        Ok(f) => load(f, fx, &mut out),
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    let xs = inputs(fx, "input.", &dev);
    let ys = fpn.forward(&xs);
    check_module(fx, &fpn, &xs, ys, &mut out);
    out
}

fn retina_parts(fx: &Fixture, out: &mut Outcome) -> Option<(RetinaHeadConfig, RetinaLogic)> {
    let cfg = config::<RetinaHeadConfig>(fx, out)?;
    match RetinaLogic::new(&cfg) {
        Ok(l) => Some((cfg, l)),
        Err(e) => {
            out.problems.push(e.to_string());
            None
        }
    }
}

fn run_retina_head(fx: &Fixture) -> Outcome {
    let mut out = Outcome::default();
    let dev = device();
    let Some((cfg, _)) = retina_parts(fx, &mut out) else {
        return out;
    };
    let head = match RetinaHead::new(&cfg, &dev) {
        Ok(h) => load(h, fx, &mut out),
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    let xs = inputs(fx, "input.", &dev);
    let (cls, reg) = head.forward(&xs);
    check_module(
        fx,
        &head,
        &xs,
        cls.into_iter().chain(reg).collect(),
        &mut out,
    );
    out
}

fn metas(fx: &Fixture) -> Vec<ImageMeta> {
    fx.json["img_metas"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| ImageMeta {
                    img_shape: sizes(&serde_json::json!([m["img_shape"]]))[0],
                    pad_shape: sizes(&serde_json::json!([m["pad_shape"]]))[0],
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The loss and predict cases use the head config of the `retina_head` case.
fn retina_logic(fx: &Fixture, out: &mut Outcome) -> Option<RetinaLogic> {
    let mut cfg: RetinaHeadConfig = match serde_json::from_value(fx.json["config"].clone()) {
        Ok(c) => c,
        Err(e) => {
            out.problems.push(format!("config: {e}"));
            return None;
        }
    };
    if let Some(test) = fx.json.get("test_cfg") {
        cfg.test_cfg = serde_json::from_value(test.clone()).ok();
    }
    match RetinaLogic::new(&cfg) {
        Ok(l) => Some(l),
        Err(e) => {
            out.problems.push(e.to_string());
            None
        }
    }
}

fn run_retina_loss(fx: &Fixture) -> Outcome {
    let mut out = Outcome::default();
    let dev = device();
    let Some(logic) = retina_logic(fx, &mut out) else {
        return out;
    };
    let cls = inputs(fx, "input.cls_scores.", &dev);
    let reg = inputs(fx, "input.bbox_preds.", &dev);
    let metas = metas(fx);
    let gts: Vec<GtInstances> = (0..metas.len())
        .map(|j| GtInstances {
            bboxes: boxes(fx, &format!("input.gt_bboxes.{j}")),
            labels: floats(fx, &format!("input.gt_labels.{j}"))
                .iter()
                .map(|&l| l as i64)
                .collect(),
        })
        .collect();
    // targets
    let sizes: Vec<(usize, usize)> = cls.iter().map(|t| (t.dims()[2], t.dims()[3])).collect();
    let mut labels = Vec::new();
    let (mut lw, mut bt, mut bw, mut vf) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut num_pos = 0;
    for (m, g) in metas.iter().zip(&gts) {
        match logic.targets(&sizes, m, g) {
            Ok(t) => {
                labels.extend(t.labels.iter().map(|&l| l as f32));
                lw.extend(t.label_weights);
                bt.extend(t.bbox_targets.into_iter().flatten());
                bw.extend(t.bbox_weights.iter().flat_map(|&w| [w; 4]));
                vf.extend(t.valid_flags.iter().map(|&v| v as u8 as f32));
                num_pos += t.num_pos;
            }
            Err(e) => {
                out.problems.push(e.to_string());
                return out;
            }
        }
    }
    let n = labels.len() / metas.len().max(1);
    let b = metas.len();
    for (key, v) in [
        ("labels", labels),
        ("label_weights", lw),
        ("valid_flags", vf),
    ] {
        out.compare(TensorData::new(v, [b, n]), fx, &format!("target.{key}"));
    }
    out.compare(TensorData::new(bt, [b, n, 4]), fx, "target.bbox_targets");
    out.compare(TensorData::new(bw, [b, n, 4]), fx, "target.bbox_weights");
    if Some(num_pos as u64) != fx.json["avg_factor"].as_u64() {
        out.problems.push(format!(
            "{num_pos} positives, fixture says {}",
            fx.json["avg_factor"]
        ));
    }
    let (lc, lb) = match logic.loss(&cls, &reg, &metas, &gts) {
        Ok(l) => l,
        Err(e) => {
            out.problems.push(e.to_string());
            return out;
        }
    };
    let mut total: Option<Tensor<1>> = None;
    for (l, (c, r)) in lc.into_iter().zip(lb).enumerate() {
        out.compare(c.to_data(), fx, &format!("output.loss_cls.{l}"));
        out.compare(r.to_data(), fx, &format!("output.loss_bbox.{l}"));
        let t = c + r;
        total = Some(match total {
            Some(s) => s + t,
            None => t,
        });
    }
    let Some(total) = total else {
        out.problems.push("no losses".into());
        return out;
    };
    let grads = total.backward();
    for (prefix, xs) in [("cls_scores", &cls), ("bbox_preds", &reg)] {
        for (i, x) in xs.iter().enumerate() {
            let key = format!("grad.input.{prefix}.{i}");
            match x.grad(&grads) {
                Some(g) => out.grad_err = out.grad_err.max(rel_err(&g.to_data(), fx.tensor(&key))),
                None => out.problems.push(format!("no gradient for {key}")),
            }
        }
    }
    out
}

fn run_retina_predict(fx: &Fixture) -> Outcome {
    let mut out = Outcome::default();
    let dev = device();
    let Some(logic) = retina_logic(fx, &mut out) else {
        return out;
    };
    let cls: Vec<Tensor<4>> = inputs(fx, "input.cls_scores.", &dev);
    let reg: Vec<Tensor<4>> = inputs(fx, "input.bbox_preds.", &dev);
    for (j, meta) in metas(fx).iter().enumerate() {
        for (prefix, with_nms) in [("output", true), ("pre_nms", false)] {
            let det = match logic.predict(&cls, &reg, j, meta, with_nms) {
                Ok(d) => d,
                Err(e) => {
                    out.problems.push(e.to_string());
                    return out;
                }
            };
            let k = format!("{prefix}.img{j}");
            let labels: Vec<f32> = det.labels.iter().map(|&l| l as f32).collect();
            if labels != floats(fx, &format!("{k}.labels")) {
                out.problems
                    .push(format!("{k}.labels differ ({} detections)", labels.len()));
                continue;
            }
            out.compare(flat(&det.bboxes), fx, &format!("{k}.bboxes"));
            let n = det.scores.len();
            out.compare(TensorData::new(det.scores, [n]), fx, &format!("{k}.scores"));
        }
    }
    out
}

/// Kinds that belong to other issues or crates.
/// The test that checks a fixture kind this harness leaves to another.
fn checked_elsewhere(kind: &str) -> Option<&'static str> {
    match kind {
        "mmdet.Shared4Conv1FCBBoxHead" => Some("mona-det tests/cascade_bbox_head.rs"),
        "mmdet.FCNMaskHead" => Some("mona-det tests/cascade_mask_head.rs"),
        k if k.starts_with("mmseg.") => Some("mona-seg"),
        _ => None,
    }
}

#[test]
fn head_fixtures() {
    let dir = fixtures_dir().join("heads");
    let fixtures = list_fixtures(&dir).unwrap_or_else(|e| panic!("cannot list fixtures: {e}"));
    assert!(!fixtures.is_empty(), "no fixtures in {}", dir.display());
    let mut stderr = std::io::stderr();
    let mut failed = Vec::new();
    for fx in &fixtures {
        let kind = fx.kind();
        let outcome = match kind {
            "mmdet.AnchorGenerator" => run_anchors(fx),
            "mmdet.DeltaXYWHBBoxCoder" => run_coder(fx),
            "mmdet.MaxIoUAssigner" => run_assigner(fx),
            "mmdet.FPN" => run_fpn(fx),
            "mmdet.RetinaHead" => run_retina_head(fx),
            "mmdet.RetinaHead.loss_by_feat" => run_retina_loss(fx),
            "mmdet.RetinaHead.predict_by_feat" => run_retina_predict(fx),
            k if checked_elsewhere(k).is_some() => {
                let by = checked_elsewhere(k).unwrap_or_default();
                let _ = writeln!(
                    stderr,
                    "heads {:<28} kind {kind:<34} checked by {by}",
                    fx.name
                );
                continue;
            }
            other => Outcome {
                problems: vec![format!("unknown fixture kind `{other}`")],
                ..Outcome::default()
            },
        };
        let verdict = if outcome.passed() { "PASS" } else { "FAIL" };
        let _ = writeln!(
            stderr,
            "heads {:<28} kind {kind:<34} output rel err {:.2e}  grad rel err {:.2e}  {verdict}{}",
            fx.name,
            outcome.out_err,
            outcome.grad_err,
            report_tail(&outcome.notes, &outcome.problems),
        );
        if !outcome.passed() {
            failed.push(fx.name.clone());
        }
    }
    assert!(failed.is_empty(), "head fixtures failed: {failed:?}");
}
