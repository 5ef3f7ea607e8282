//! The Cascade R-CNN box head (`ConvFCBBoxHead` / `Shared4Conv1FCBBoxHead`): golden-fixture
//! parity of the forward pass and its gradients, the class-specific decode, and the
//! targets / loss / refinement / post-processing against hand-computed numbers.

use std::collections::HashMap;

use burn::tensor::{Device, Tensor, TensorData};
use mona_core::params::{load_params, param_grads, param_infos};
use mona_det::ops::boxes::{Box4, OverlapMode, boxes_from_flat, overlap};
use mona_det::roi::{
    BBoxHeadConfig, BBoxHeadLogic, BBoxTargets, ConvFcBBoxHead, RcnnTestConfig, Roi, bbox2roi,
};
use mona_det::sampler::SamplingResult;
use mona_det::{DeltaCoderConfig, DeltaXYWHBBoxCoder};
use mona_fixtures::{
    FORWARD_TOL, Fixture, GRAD_TOL, fixtures_dir, list_fixtures, rel_err, test_device,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Fixture {
    list_fixtures(&fixtures_dir().join("heads"))
        .expect("fixtures")
        .into_iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("fixture {name}"))
}

fn tensor<const D: usize>(data: &TensorData, dev: &Device) -> Tensor<D> {
    Tensor::from_data(data.clone().convert::<f32>(), dev)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

fn t2(v: &[f32], rows: usize, dev: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(v.to_vec(), [rows, v.len() / rows]), dev)
}

fn head_cfg(v: Value) -> BBoxHeadConfig {
    serde_json::from_value(v).expect("config")
}

/// The Mona COCO stage-1 box head (`cascade_mask_swin_base_3x_coco_mona`).
fn mona_stage1() -> Value {
    json!({
        "type": "ConvFCBBoxHead",
        "num_shared_convs": 4,
        "num_shared_fcs": 1,
        "in_channels": 256,
        "conv_out_channels": 256,
        "fc_out_channels": 1024,
        "roi_feat_size": 7,
        "num_classes": 80,
        "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0, 0.0, 0.0, 0.0],
                       "target_stds": [0.1, 0.1, 0.2, 0.2]},
        "reg_class_agnostic": false,
        "reg_decoded_bbox": true,
        "norm_cfg": {"type": "SyncBN", "requires_grad": true},
        "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": false, "loss_weight": 1.0},
        "loss_bbox": {"type": "GIoULoss", "loss_weight": 10.0}
    })
}

#[test]
fn shared4conv1fc_matches_the_fixture_outputs_and_gradients() {
    let fx = fixture("bbox_head_shared4conv1fc");
    let dev = test_device();
    let mut cfg = fx.json["config"].clone();
    cfg["type"] = json!("Shared4Conv1FCBBoxHead");
    let cfg = head_cfg(cfg);
    let head = ConvFcBBoxHead::new(&cfg, &dev).unwrap();
    let params: HashMap<String, TensorData> = fx.with_prefix("param.").into_iter().collect();
    let (head, loaded) = load_params(head, &params);
    assert!(
        loaded.missing.is_empty() && loaded.mismatched.is_empty(),
        "missing {:?} mismatched {:?}",
        loaded.missing,
        loaded.mismatched
    );
    assert_eq!(
        loaded.applied.len(),
        params.len(),
        "every fixture param used"
    );
    let x = tensor::<4>(fx.tensor("input.0"), &dev).require_grad();
    let (cls, reg) = head.forward(x.clone(), false);
    let out_err = rel_err(&cls.to_data(), fx.tensor("output.0"))
        .max(rel_err(&reg.to_data(), fx.tensor("output.1")));
    let loss = (cls * tensor::<2>(fx.tensor("loss_weight.0"), &dev)).sum()
        + (reg * tensor::<2>(fx.tensor("loss_weight.1"), &dev)).sum();
    let grads = loss.backward();
    let actual = param_grads(&head, &grads);
    let mut grad_err = 0f64;
    let expected = fx.with_prefix("grad.param.");
    assert_eq!(expected.len(), 18);
    for (key, g) in &expected {
        let a = actual
            .get(key)
            .unwrap_or_else(|| panic!("no gradient for {key}"));
        grad_err = grad_err.max(rel_err(a, g));
    }
    let gx = x.grad(&grads).expect("input gradient");
    grad_err = grad_err.max(rel_err(&gx.to_data(), fx.tensor("grad.input.0")));
    eprintln!(
        "bbox_head_shared4conv1fc: output rel err {out_err:.2e}, grad rel err {grad_err:.2e}"
    );
    assert!(out_err <= FORWARD_TOL, "output rel err {out_err}");
    assert!(grad_err <= GRAD_TOL, "grad rel err {grad_err}");
}

#[test]
fn class_specific_decode_matches_the_stds_fixture() {
    let fx = fixture("delta_coder_stds");
    let cfg: DeltaCoderConfig = serde_json::from_value(fx.json["config"].clone()).unwrap();
    let coder = DeltaXYWHBBoxCoder::new(cfg);
    let rois = boxes_from_flat(&fx.floats("input.rois"));
    let deltas = fx.floats("input.deltas");
    let dev = Device::flex();
    let mut worst = 0f64;
    for (key, shape) in [
        ("output.decoded_clamped", Some((83, 101))),
        ("output.decoded_unclamped", None),
    ] {
        let host = coder.decode_rows(&rois, &deltas, shape);
        worst = worst.max(rel_err(&TensorData::new(host, [12, 16]), fx.tensor(key)));
        let flat: Vec<f32> = rois.iter().flatten().copied().collect();
        let t = coder.decode_tensor(t2(&flat, 12, &dev), t2(&deltas, 12, &dev), shape);
        worst = worst.max(rel_err(&t.to_data(), fx.tensor(key)));
    }
    eprintln!("delta_coder_stds class-specific decode: rel err {worst:.2e}");
    assert!(worst <= FORWARD_TOL, "{worst}");
}

#[test]
fn configs_resolve_like_mmdet_and_bad_ones_are_errors() {
    // the Mona head: parameter names and shapes of mmdet's state dict
    let head = ConvFcBBoxHead::new(&head_cfg(mona_stage1()), &Device::flex()).unwrap();
    let infos = param_infos(&head);
    let shapes: HashMap<String, Vec<usize>> = infos.into_iter().map(|p| (p.key, p.shape)).collect();
    assert_eq!(shapes["shared_convs.0.conv.weight"], vec![256, 256, 3, 3]);
    assert_eq!(shapes["shared_convs.3.bn.running_var"], vec![256]);
    assert!(!shapes.contains_key("shared_convs.0.conv.bias"));
    assert_eq!(shapes["shared_fcs.0.weight"], vec![1024, 256 * 49]);
    assert_eq!(shapes["fc_cls.weight"], vec![81, 1024]);
    assert_eq!(shapes["fc_reg.weight"], vec![320, 1024]);
    assert_eq!(shapes["fc_reg.bias"], vec![320]);
    assert_eq!(shapes.len(), 4 * 5 + 2 + 4);

    // presets
    let two = ConvFcBBoxHead::new(
        &head_cfg(
            json!({"type": "Shared2FCBBoxHead", "in_channels": 8, "fc_out_channels": 16,
                         "num_classes": 3, "reg_class_agnostic": true}),
        ),
        &Device::flex(),
    )
    .unwrap();
    let keys: Vec<(String, Vec<usize>)> = param_infos(&two)
        .into_iter()
        .map(|p| (p.key, p.shape))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("shared_fcs.0.weight".into(), vec![16, 8 * 49]),
            ("shared_fcs.0.bias".into(), vec![16]),
            ("shared_fcs.1.weight".into(), vec![16, 16]),
            ("shared_fcs.1.bias".into(), vec![16]),
            ("fc_cls.weight".into(), vec![4, 16]),
            ("fc_cls.bias".into(), vec![4]),
            ("fc_reg.weight".into(), vec![4, 16]),
            ("fc_reg.bias".into(), vec![4]),
        ]
    );

    // errors, never panics
    let bad = [
        json!({"type": "Shared2FCBBoxHead", "num_shared_convs": 4}),
        json!({"type": "FooBBoxHead"}),
        json!({"type": "ConvFCBBoxHead", "num_shared_convs": 2}),
        json!({"type": "Shared2FCBBoxHead", "num_cls_fcs": 1}),
        json!({"type": "Shared2FCBBoxHead", "norm_cfg": {"type": "GN"}}),
        json!({"type": "Shared2FCBBoxHead", "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": true}}),
        json!({"type": "Shared2FCBBoxHead", "loss_bbox": {"type": "IoULoss"}}),
        json!({"type": "Shared2FCBBoxHead", "with_avg_pool": true}),
    ];
    for v in bad {
        let cfg = head_cfg(v.clone());
        assert!(ConvFcBBoxHead::new(&cfg, &Device::flex()).is_err(), "{v}");
        assert!(BBoxHeadLogic::new(&cfg).is_err(), "{v}");
    }
    assert!(serde_json::from_value::<BBoxHeadConfig>(json!({"num_clases": 3})).is_err());
    // mmdet's BBoxHead defaults
    let d = head_cfg(json!({"type": "Shared2FCBBoxHead"}));
    assert_eq!(d.bbox_coder.target_stds, [0.1, 0.1, 0.2, 0.2]);
    assert_eq!((d.num_classes, d.fc_out_channels), (80, 1024));
    assert_eq!(d.loss_bbox.kind, "SmoothL1Loss");
}

#[test]
fn init_follows_mmdet() {
    let cfg = head_cfg(json!({
        "type": "Shared4Conv1FCBBoxHead", "in_channels": 16, "conv_out_channels": 32,
        "fc_out_channels": 64, "num_classes": 40, "norm_cfg": {"type": "BN"}
    }));
    let head = ConvFcBBoxHead::new(&cfg, &Device::flex()).unwrap();
    let std = |v: &[f32]| {
        let m = v.iter().sum::<f32>() / v.len() as f32;
        (v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt()
    };
    let cls = values(head.fc_cls.weight.val());
    let reg = values(head.fc_reg.weight.val());
    assert!((std(&cls) / 0.01 - 1.0).abs() < 0.1, "{}", std(&cls));
    assert!((std(&reg) / 0.001 - 1.0).abs() < 0.1, "{}", std(&reg));
    let fc = values(head.shared_fcs[0].weight.val());
    let bound = (6.0f32 / (32.0 * 49.0 + 64.0)).sqrt();
    assert!(fc.iter().all(|v| v.abs() <= bound));
    assert!((std(&fc) / (bound / 3f32.sqrt()) - 1.0).abs() < 0.05);
    let conv = values(head.shared_convs[1].conv.weight.val());
    assert!((std(&conv) / (2.0f32 / (32.0 * 9.0)).sqrt() - 1.0).abs() < 0.1);
    let bn = head.shared_convs[0].bn.as_ref().unwrap();
    assert!(values(bn.weight.val()).iter().all(|&v| v == 1.0));
    for b in [
        &head.fc_cls.bias,
        &head.fc_reg.bias,
        &head.shared_fcs[0].bias,
    ] {
        assert!(values(b.as_ref().unwrap().val()).iter().all(|&v| v == 0.0));
    }
}

fn sampling(pos: &[(Box4, Box4, i64, bool)], neg: &[Box4]) -> SamplingResult {
    SamplingResult {
        pos_inds: (0..pos.len()).collect(),
        neg_inds: (pos.len()..pos.len() + neg.len()).collect(),
        pos_bboxes: pos.iter().map(|p| p.0).collect(),
        neg_bboxes: neg.to_vec(),
        pos_is_gt: pos.iter().map(|p| p.3).collect(),
        pos_assigned_gt_inds: (0..pos.len()).collect(),
        pos_gt_bboxes: pos.iter().map(|p| p.1).collect(),
        pos_gt_labels: pos.iter().map(|p| p.2).collect(),
        num_gts: pos.len(),
    }
}

#[test]
fn targets_follow_get_targets() {
    let gt_a = [10.0, 10.0, 30.0, 40.0];
    let gt_b = [50.0, 50.0, 70.0, 60.0];
    let results = [
        sampling(
            &[
                (gt_a, gt_a, 2, true),
                ([12.0, 8.0, 33.0, 41.0], gt_a, 2, false),
            ],
            &[[0.0, 0.0, 5.0, 5.0]],
        ),
        sampling(
            &[([48.0, 52.0, 71.0, 59.0], gt_b, 0, false)],
            &[[1.0, 1.0, 4.0, 4.0], [2.0, 2.0, 9.0, 9.0]],
        ),
    ];
    let cfg = head_cfg(json!({"type": "Shared2FCBBoxHead", "num_classes": 3}));
    let logic = BBoxHeadLogic::new(&cfg).unwrap();
    let t = logic.targets(&results, -1.0).unwrap();
    assert_eq!(t.labels, vec![2, 2, 3, 0, 3, 3]);
    assert_eq!(t.label_weights, vec![1.0; 6]);
    assert_eq!(t.bbox_weights, vec![1.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    assert_eq!(t.bbox_targets[0], [0.0; 4]);
    assert_eq!(
        t.bbox_targets[1],
        logic.coder.encode(&[12.0, 8.0, 33.0, 41.0], &gt_a)
    );
    assert_eq!(
        t.bbox_targets[3],
        logic.coder.encode(&[48.0, 52.0, 71.0, 59.0], &gt_b)
    );
    assert_eq!(t.bbox_targets[4], [0.0; 4]);
    // RoI rows in the same order
    let rois = bbox2roi(&results.iter().map(|r| r.bboxes()).collect::<Vec<_>>());
    assert_eq!(rois.len(), 6);
    assert_eq!(rois[3], [1.0, 48.0, 52.0, 71.0, 59.0]);
    assert_eq!(rois[2], [0.0, 0.0, 0.0, 5.0, 5.0]);
    // pos_weight, and reg_decoded_bbox keeps the GT box
    let mut cfg = cfg;
    cfg.reg_decoded_bbox = true;
    let t = BBoxHeadLogic::new(&cfg)
        .unwrap()
        .targets(&results, 2.5)
        .unwrap();
    assert_eq!(t.label_weights, vec![2.5, 2.5, 1.0, 2.5, 1.0, 1.0]);
    assert_eq!(t.bbox_targets[1], gt_a);
    assert_eq!(t.bbox_targets[3], gt_b);
    // a positive without a label is an error, not a panic
    let unlabeled = sampling(&[(gt_a, gt_a, -1, true)], &[]);
    assert!(
        BBoxHeadLogic::new(&cfg)
            .unwrap()
            .targets(&[unlabeled], 1.0)
            .is_err()
    );
}

fn ce(row: [f64; 3], label: usize) -> f64 {
    row.iter().map(|v| v.exp()).sum::<f64>().ln() - row[label]
}

#[test]
fn smooth_l1_loss_and_accuracy_by_hand() {
    let dev = Device::flex().autodiff();
    let logic = BBoxHeadLogic::new(&head_cfg(json!({
        "type": "Shared2FCBBoxHead", "num_classes": 2,
        "loss_bbox": {"type": "SmoothL1Loss", "beta": 1.0, "loss_weight": 2.0}
    })))
    .unwrap();
    let cls = t2(&[1.0, 2.0, 0.0, 0.0, 4.0, 3.0], 2, &dev).require_grad();
    let reg = t2(
        &[
            0.1, 0.2, 0.3, 0.4, 0.5, -0.5, 2.0, 0.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0,
        ],
        2,
        &dev,
    )
    .require_grad();
    let rois: Vec<Roi> = vec![[0.0, 0.0, 0.0, 10.0, 10.0], [0.0, 5.0, 5.0, 9.0, 9.0]];
    let targets = BBoxTargets {
        labels: vec![1, 2],
        label_weights: vec![3.0, 1.0],
        bbox_targets: vec![[0.0; 4], [0.0; 4]],
        bbox_weights: vec![1.0, 0.0],
    };
    let l = logic
        .loss(cls.clone(), reg.clone(), &rois, &targets)
        .unwrap();
    // avg_factor = #(label_weights > 0) = 2
    let expected_cls = (3.0 * ce([1.0, 2.0, 0.0], 1) + ce([0.0, 4.0, 3.0], 2)) / 2.0;
    let got_cls = l.loss_cls.clone().into_scalar::<f32>() as f64;
    assert!(
        (got_cls - expected_cls).abs() < 1e-5,
        "{got_cls} vs {expected_cls}"
    );
    assert_eq!(l.acc, 50.0);
    // class-1 deltas of RoI 0 vs 0: 0.125 + 0.125 + 1.5 + 0 = 1.75, / 2 RoIs, × 2
    let got_bbox = l.loss_bbox.clone().into_scalar::<f32>();
    assert!((got_bbox - 1.75).abs() < 1e-6, "{got_bbox}");
    let grads = l.loss_bbox.backward();
    let g = values(reg.grad(&grads).unwrap());
    let mut expected = [0.0f32; 16];
    expected[4] = 0.5;
    expected[5] = -0.5;
    expected[6] = 1.0;
    for (a, b) in g.iter().zip(expected) {
        assert!((a - b).abs() < 1e-6, "{g:?}");
    }
    // no positives: loss_bbox 0, still differentiable
    let neg = BBoxTargets {
        labels: vec![2, 2],
        label_weights: vec![1.0, 1.0],
        bbox_targets: vec![[0.0; 4]; 2],
        bbox_weights: vec![0.0; 2],
    };
    let l = logic.loss(cls.clone(), reg.clone(), &rois, &neg).unwrap();
    assert_eq!(l.loss_bbox.clone().into_scalar::<f32>(), 0.0);
    let grads = l.loss_bbox.backward();
    assert!(values(reg.grad(&grads).unwrap()).iter().all(|&v| v == 0.0));
    // wrong shapes are errors
    assert!(logic.loss(cls, reg, &rois[..1], &neg).is_err());
}

fn giou_logic() -> BBoxHeadLogic {
    let mut v = mona_stage1();
    v["num_classes"] = json!(2);
    BBoxHeadLogic::new(&head_cfg(v)).unwrap()
}

#[test]
fn decoded_giou_loss_by_hand_and_by_finite_differences() {
    let logic = giou_logic();
    let rois: Vec<Roi> = vec![[0.0, 0.0, 0.0, 10.0, 10.0], [0.0, 20.0, 20.0, 40.0, 30.0]];
    let gt = [5.0f32, 5.0, 15.0, 15.0];
    let targets = BBoxTargets {
        labels: vec![1, 2],
        label_weights: vec![1.0, 1.0],
        bbox_targets: vec![gt, [0.0; 4]],
        bbox_weights: vec![1.0, 0.0],
    };
    let cls = [0.0f32, 0.0, 0.0, 0.0, 0.0, 0.0];
    let loss_of = |deltas: &[f32], dev: &Device| {
        logic
            .loss(t2(&cls, 2, dev), t2(deltas, 2, dev), &rois, &targets)
            .unwrap()
            .loss_bbox
    };
    let cpu = Device::flex();
    // zero deltas decode to the RoI itself: 10 · (1 − (1/7 − 50/225)) / 2 RoIs
    let zero = [0.0f32; 16];
    let got = loss_of(&zero, &cpu).into_scalar::<f32>() as f64;
    let expected = 10.0 * (1.0 - (1.0 / 7.0 - 50.0 / 225.0)) / 2.0;
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // class 1's deltas (columns 4..8) are used, de-normalised by the stds
    let mut deltas = [1.0f32; 16];
    deltas[..8].copy_from_slice(&[3.0, 3.0, 3.0, 3.0, 0.5, -0.3, 1.0, 0.4]);
    let (dx, dy, dw, dh) = (0.5 * 0.1, -0.3 * 0.1, 1.0 * 0.2, 0.4 * 0.2f64);
    let (gx, gy) = (5.0 + 10.0 * dx, 5.0 + 10.0 * dy);
    let (gw, gh) = (10.0 * f64::exp(dw), 10.0 * f64::exp(dh));
    let decoded = [gx - gw / 2.0, gy - gh / 2.0, gx + gw / 2.0, gy + gh / 2.0].map(|v| v as f32);
    let expected = 10.0 * (1.0 - overlap(&decoded, &gt, OverlapMode::Giou)) / 2.0;
    let got = loss_of(&deltas, &cpu).into_scalar::<f32>();
    assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
    // gradient against central differences
    let dev = Device::flex().autodiff();
    let reg = t2(&deltas, 2, &dev).require_grad();
    let l = logic
        .loss(t2(&cls, 2, &dev), reg.clone(), &rois, &targets)
        .unwrap();
    let g = values(reg.grad(&l.loss_bbox.backward()).unwrap());
    for j in 0..16 {
        let (mut up, mut down) = (deltas, deltas);
        up[j] += 1e-2;
        down[j] -= 1e-2;
        let numeric = (loss_of(&up, &cpu).into_scalar::<f32>()
            - loss_of(&down, &cpu).into_scalar::<f32>())
            / 2e-2;
        assert!(
            (g[j] - numeric).abs() < 2e-3,
            "d/d delta[{j}]: {} vs {numeric}",
            g[j]
        );
        if !(4..8).contains(&j) {
            assert_eq!(g[j], 0.0, "other classes and the negative RoI untouched");
        }
    }
}

#[test]
fn refine_bboxes_regresses_by_class_and_drops_gt_proposals() {
    let logic = BBoxHeadLogic::new(&head_cfg(json!({
        "type": "Shared2FCBBoxHead", "num_classes": 2,
        "bbox_coder": {"target_means": [0.0, 0.0, 0.0, 0.0], "target_stds": [1.0, 1.0, 1.0, 1.0]}
    })))
    .unwrap();
    let dev = Device::flex();
    let rois: Vec<Roi> = vec![
        [0.0, 0.0, 0.0, 10.0, 10.0],   // GT proposal (label 0)
        [0.0, 10.0, 10.0, 30.0, 30.0], // positive, label 1
        [0.0, 50.0, 50.0, 60.0, 60.0], // background → argmax over fg = class 1
        [1.0, 0.0, 0.0, 20.0, 20.0],   // background → class 0, clipped to h = 25
    ];
    let labels = [0, 1, 2, 2];
    let cls = t2(
        &[9.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.1, 0.7, 5.0, 2.0, 1.0, 0.0],
        4,
        &dev,
    );
    let ln2 = std::f32::consts::LN_2;
    let reg = t2(
        &[
            0.0, 0.0, 0.0, 0.0, 7.0, 7.0, 7.0, 7.0, //
            9.0, 9.0, 9.0, 9.0, 0.1, 0.0, 0.0, 0.0, //
            0.5, 0.5, 0.5, 0.5, 0.0, 0.0, ln2, 0.0, //
            0.0, 0.5, 0.0, 0.0, 3.0, 3.0, 3.0, 3.0,
        ],
        4,
        &dev,
    );
    let out = logic
        .refine_bboxes(
            &rois,
            &labels,
            cls,
            reg,
            &[vec![true, false], vec![]],
            &[(100, 100), (25, 100)],
        )
        .unwrap();
    let expected: [&[Box4]; 2] = [
        &[[12.0, 10.0, 32.0, 30.0], [45.0, 50.0, 65.0, 60.0]],
        &[[0.0, 10.0, 20.0, 25.0]],
    ];
    assert_eq!(out.len(), 2);
    for (got, want) in out.iter().zip(expected) {
        assert_eq!(got.len(), want.len(), "{out:?}");
        for (a, b) in got.iter().zip(want) {
            for k in 0..4 {
                assert!((a[k] - b[k]).abs() < 1e-4, "{out:?}");
            }
        }
    }
    // a RoI of an image that was not given is an error
    let bad: Vec<Roi> = vec![[2.0, 0.0, 0.0, 1.0, 1.0]];
    assert!(
        logic
            .refine_bboxes(
                &bad,
                &[0],
                t2(&[0.0; 3], 1, &dev),
                t2(&[0.0; 8], 1, &dev),
                &[vec![]],
                &[(10, 10)]
            )
            .is_err()
    );
}

#[test]
fn predict_softmax_decode_and_class_aware_nms() {
    let logic = BBoxHeadLogic::new(&head_cfg(json!({
        "type": "Shared2FCBBoxHead", "num_classes": 2,
        "bbox_coder": {"target_means": [0.0, 0.0, 0.0, 0.0], "target_stds": [1.0, 1.0, 1.0, 1.0]}
    })))
    .unwrap();
    let dev = Device::flex();
    // A and B overlap (IoU 90/110), C equals A
    let rois: Vec<Box4> = vec![
        [0.0, 0.0, 10.0, 10.0],
        [1.0, 0.0, 11.0, 10.0],
        [0.0, 0.0, 10.0, 10.0],
    ];
    let logits = [3.0f32, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.5, 0.0];
    let softmax = |row: &[f32]| -> Vec<f32> {
        let s: f32 = row.iter().map(|v| v.exp()).sum();
        row.iter().map(|v| v.exp() / s).collect()
    };
    let cfg: RcnnTestConfig = serde_json::from_value(json!({
        "score_thr": 0.05, "nms": {"type": "nms", "iou_threshold": 0.5},
        "max_per_img": 100, "mask_thr_binary": 0.5
    }))
    .unwrap();
    let det = logic
        .predict(
            &rois,
            t2(&logits, 3, &dev),
            t2(&[0.0; 24], 3, &dev),
            (100, 100),
            None,
            &cfg,
        )
        .unwrap();
    // candidates (> 0.05): A·0 .909, B·0 .787, B·1 .106, C·0 .071, C·1 .859 (A·1 .045 is
    // below). Same class: B·0 and C·0 under A·0, B·1 under C·1; A·0 and C·1 are identical
    // boxes of different classes: both kept.
    assert_eq!(det.labels, vec![0, 1]);
    assert_eq!(det.bboxes, vec![rois[0], rois[2]]);
    let (pa, pc) = (softmax(&logits[0..3])[0], softmax(&logits[6..9])[1]);
    assert!((det.scores[0] - pa).abs() < 1e-6 && (det.scores[1] - pc).abs() < 1e-6);
    // max_per_img 1 keeps the best
    let one = RcnnTestConfig {
        max_per_img: 1,
        ..cfg.clone()
    };
    let det = logic
        .predict(
            &rois,
            t2(&logits, 3, &dev),
            t2(&[0.0; 24], 3, &dev),
            (100, 100),
            Some([2.0, 4.0, 2.0, 4.0]),
            &one,
        )
        .unwrap();
    assert_eq!(det.labels, vec![0]);
    // rescale divides by the scale factor (w, h, w, h)
    assert_eq!(det.bboxes, vec![[0.0, 0.0, 5.0, 2.5]]);
    // the decoded class-0 deltas of A shift it, clipped to the image; score_thr 0.86 leaves
    // only A·0
    let high = RcnnTestConfig {
        score_thr: 0.86,
        ..cfg
    };
    let mut deltas = [0.0f32; 24];
    deltas[0] = 0.5; // A, class 0: +5 in x → [5, 0, 15, 10], clipped to w = 12
    let det = logic
        .predict(
            &rois,
            t2(&logits, 3, &dev),
            t2(&deltas, 3, &dev),
            (100, 12),
            None,
            &high,
        )
        .unwrap();
    assert_eq!(det.labels, vec![0]);
    assert_eq!(det.bboxes, vec![[5.0, 0.0, 12.0, 10.0]]);
}

#[test]
fn no_rois_give_empty_outputs_and_zero_losses() {
    let dev = Device::flex().autodiff();
    let mut v = mona_stage1();
    v["in_channels"] = json!(8);
    v["conv_out_channels"] = json!(8);
    v["fc_out_channels"] = json!(16);
    v["num_classes"] = json!(3);
    let cfg = head_cfg(v);
    let head = ConvFcBBoxHead::new(&cfg, &dev).unwrap();
    let (cls, reg) = head.forward(Tensor::<4>::zeros([0, 8, 7, 7], &dev), true);
    assert_eq!((cls.dims(), reg.dims()), ([0, 4], [0, 12]));
    let bn = head.shared_convs[0].bn.as_ref().unwrap();
    assert!(
        values(bn.running_mean.value())
            .iter()
            .all(|v| v.is_finite())
    );
    let logic = BBoxHeadLogic::new(&cfg).unwrap();
    let l = logic
        .loss(cls.clone(), reg.clone(), &[], &BBoxTargets::default())
        .unwrap();
    assert_eq!(l.loss_cls.into_scalar::<f32>(), 0.0);
    assert_eq!(l.acc, 0.0);
    let test: RcnnTestConfig =
        serde_json::from_value(json!({"score_thr": 0.05, "nms": {"iou_threshold": 0.5}})).unwrap();
    let det = logic.predict(&[], cls, reg, (10, 10), None, &test).unwrap();
    assert!(det.bboxes.is_empty());
}
