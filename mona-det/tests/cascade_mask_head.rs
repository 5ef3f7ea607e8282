//! The mask branch of Cascade Mask R-CNN: `FCNMaskHead` against the golden mmdet fixture
//! (output and every gradient), its config, init and loss by hand; the mask targets
//! (`mask_target` / `BitmapMasks.crop_and_resize`), the test-time paste (`get_seg_masks`)
//! and the COCO RLE of a result.

use std::io::Write;

use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Device, Tensor, TensorData};
use image::GrayImage;
use mona_core::params::{load_params, param_grads, param_infos};
use mona_det::ops::boxes::Box4;
use mona_det::ops::roi_align::{RoiAlignConfig, reference, roi_align};
use mona_det::roi::mask_head::{FcnMaskHead, FcnMaskHeadConfig, MaskHeadError, mask_loss};
use mona_det::roi::mask_ops::{
    MaskOpsError, encode_rle, get_seg_masks, get_targets, mask_targets, paste_mask,
    roi_align_single,
};
use mona_det::sampler::SamplingResult;
use mona_fixtures::{FORWARD_TOL, GRAD_TOL, fixtures_dir, list_fixtures, rel_err};
use serde_json::json;

fn device() -> Device {
    Device::flex().autodiff()
}

fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

/// Deterministic pseudo-random values in [0, 1).
fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

fn base_config() -> FcnMaskHeadConfig {
    // `_base_/models/cascade_mask_rcnn_swin_fpn.py` mask_head (one per stage)
    serde_json::from_value(json!({
        "type": "FCNMaskHead",
        "num_convs": 4,
        "in_channels": 256,
        "conv_out_channels": 256,
        "num_classes": 80,
        "loss_mask": {"type": "CrossEntropyLoss", "use_mask": true, "loss_weight": 1.0}
    }))
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// FCNMaskHead
// ---------------------------------------------------------------------------------------

#[test]
fn fcn_mask_head_matches_mmdet_fixture() {
    let dir = fixtures_dir().join("heads");
    let fixtures = list_fixtures(&dir).unwrap_or_else(|e| panic!("cannot list fixtures: {e}"));
    let fx = fixtures
        .iter()
        .find(|f| f.kind() == "mmdet.FCNMaskHead")
        .expect("no mmdet.FCNMaskHead fixture");
    let dev = mona_fixtures::test_device();
    let cfg: FcnMaskHeadConfig = serde_json::from_value(fx.json["config"].clone()).unwrap();
    let head = FcnMaskHead::new(&cfg, &dev).unwrap();
    let params = fx.with_prefix("param.").into_iter().collect();
    let (head, loaded) = load_params(head, &params);
    assert!(
        loaded.missing.is_empty() && loaded.mismatched.is_empty(),
        "missing {:?}, mismatched {:?}",
        loaded.missing,
        loaded.mismatched
    );
    assert_eq!(loaded.applied.len(), params.len(), "unused fixture params");
    let tensor = |key: &str| -> Tensor<4> {
        Tensor::from_data(fx.tensor(key).clone().convert::<f32>(), &dev)
    };
    let x = tensor("input.0").require_grad();
    let y = head.forward(x.clone());
    let out_err = rel_err(&y.to_data(), fx.tensor("output.0"));
    let grads = (y * tensor("loss_weight.0")).sum().backward();
    let actual = param_grads(&head, &grads);
    let mut grad_err = 0f64;
    let expected = fx.with_prefix("grad.param.");
    assert_eq!(expected.len(), 12);
    for (key, e) in &expected {
        let g = actual
            .get(key)
            .unwrap_or_else(|| panic!("no gradient for {key}"));
        grad_err = grad_err.max(rel_err(g, e));
    }
    let gx = x.grad(&grads).expect("no input gradient").to_data();
    grad_err = grad_err.max(rel_err(&gx, fx.tensor("grad.input.0")));
    let _ = writeln!(
        std::io::stderr(),
        "fcn_mask_head: output rel err {out_err:.2e}, grad rel err {grad_err:.2e}"
    );
    assert!(out_err <= FORWARD_TOL, "output rel err {out_err}");
    assert!(grad_err <= GRAD_TOL, "grad rel err {grad_err}");
}

/// The matmul + pixel-shuffle deconv equals burn's own `conv_transpose2d(k=2, s=2)`.
#[test]
fn deconv_equals_conv_transpose() {
    let dev = Device::flex();
    let cfg: FcnMaskHeadConfig = serde_json::from_value(json!({
        "num_convs": 0, "in_channels": 5, "conv_out_channels": 3, "num_classes": 2
    }))
    .unwrap();
    let head = FcnMaskHead::new(&cfg, &dev).unwrap();
    let x = Tensor::<4>::from_data(
        TensorData::new(uniform(2 * 5 * 4 * 3, 1), [2, 5, 4, 3]),
        &dev,
    );
    let bias = Tensor::<1>::from_data(TensorData::new(vec![0.3f32, -0.2, 0.1], [3]), &dev);
    let mut up = head.upsample;
    up.bias = burn::module::Param::from_tensor(bias.clone());
    let ours = vec_of(up.forward(x.clone()));
    let reference = conv_transpose2d(
        x,
        up.weight.val(),
        Some(bias),
        ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1),
    );
    assert_eq!(reference.dims(), [2, 3, 8, 6]);
    let reference = vec_of(reference);
    let err = ours
        .iter()
        .zip(&reference)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-5, "deconv differs from conv_transpose2d by {err}");
}

#[test]
fn config_names_shapes_and_init() {
    let dev = Device::flex();
    let head = FcnMaskHead::new(&base_config(), &dev).unwrap();
    let infos = param_infos(&head);
    let shapes: Vec<(String, Vec<usize>)> = infos
        .iter()
        .map(|p| (p.key.clone(), p.shape.clone()))
        .collect();
    let mut expected: Vec<(String, Vec<usize>)> = Vec::new();
    for i in 0..4 {
        expected.push((format!("convs.{i}.conv.weight"), vec![256, 256, 3, 3]));
        expected.push((format!("convs.{i}.conv.bias"), vec![256]));
    }
    expected.push(("upsample.weight".into(), vec![256, 256, 2, 2]));
    expected.push(("upsample.bias".into(), vec![256]));
    expected.push(("conv_logits.weight".into(), vec![80, 256, 1, 1]));
    expected.push(("conv_logits.bias".into(), vec![80]));
    let mut sorted = shapes.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);

    // kaiming_normal(fan_out, relu): std √(2 / fan_out), PyTorch's fan_out = size(0)·k²
    let std = |t: Tensor<4>| {
        let v = vec_of(t);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        (v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt()
    };
    let s_up = std(head.upsample.weight.val());
    assert!(
        (s_up / (2.0f64 / 1024.0).sqrt() - 1.0).abs() < 0.02,
        "{s_up}"
    );
    let s_conv = std(head.convs[1].conv.weight.val());
    assert!(
        (s_conv / (2.0f64 / 2304.0).sqrt() - 1.0).abs() < 0.02,
        "{s_conv}"
    );
    let s_logits = std(head.conv_logits.weight.val());
    assert!(
        (s_logits / (2.0f64 / 80.0).sqrt() - 1.0).abs() < 0.05,
        "{s_logits}"
    );
    let b = vec_of(head.upsample.bias.val());
    assert!(b.iter().all(|&v| v == 0.0));

    // forward shape; class-agnostic has one channel
    let x = Tensor::<4>::zeros([2, 256, 14, 14], &dev);
    assert_eq!(head.forward(x.clone()).dims(), [2, 80, 28, 28]);
    let mut cfg = base_config();
    cfg.class_agnostic = true;
    let agnostic = FcnMaskHead::new(&cfg, &dev).unwrap();
    assert_eq!(agnostic.forward(x).dims(), [2, 1, 28, 28]);

    // no RoI: an empty batch in, an empty batch out (and a zero loss)
    let small: FcnMaskHeadConfig = serde_json::from_value(json!({
        "in_channels": 4, "conv_out_channels": 4, "num_classes": 3
    }))
    .unwrap();
    let small = FcnMaskHead::new(&small, &device()).unwrap();
    let empty = small.forward(Tensor::<4>::zeros([0, 4, 14, 14], &device()));
    assert_eq!(empty.dims(), [0, 3, 28, 28]);
    assert_eq!(vec_of(small.loss(empty, &[], &[]).unwrap()), vec![0.0]);

    // bad configs are errors, not panics
    assert!(
        serde_json::from_value::<FcnMaskHeadConfig>(json!({"num_classes": 3, "foo": 1})).is_err()
    );
    let mut bad = base_config();
    bad.upsample_cfg.kind = "carafe".into();
    assert!(matches!(
        FcnMaskHead::new(&bad, &dev),
        Err(MaskHeadError::Upsample(_))
    ));
    let mut bad = base_config();
    bad.norm_cfg = Some(json!({"type": "GN"}));
    assert!(FcnMaskHead::new(&bad, &dev).is_err());
}

// ---------------------------------------------------------------------------------------
// Loss
// ---------------------------------------------------------------------------------------

fn bce(x: f64, t: f64) -> f64 {
    x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn loss_takes_the_label_channel_and_averages() {
    let dev = device();
    let (n, c, s) = (2usize, 3usize, 2usize);
    let logits: Vec<f32> = (0..n * c * s * s)
        .map(|i| (i as f32 - 11.0) * 0.37)
        .collect();
    let targets = vec![1.0f32, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0];
    let labels = [2i64, 0];
    let x =
        Tensor::<4>::from_data(TensorData::new(logits.clone(), [n, c, s, s]), &dev).require_grad();
    let w = 0.7f32;
    let loss = mask_loss(x.clone(), &targets, &labels, c, false, w).unwrap();
    // by hand: the S·S logits of channel label[i] of RoI i
    let pick = |i: usize, k: usize| logits[(i * c + labels[i] as usize) * s * s + k] as f64;
    let mut expected = 0.0;
    for i in 0..n {
        for k in 0..s * s {
            expected += bce(pick(i, k), targets[i * s * s + k] as f64);
        }
    }
    expected *= w as f64 / (n * s * s) as f64;
    let got = vec_of(loss.clone())[0] as f64;
    assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");

    // d/dx = w · (σ(x) − t) / (N·S·S) on the label channel, 0 elsewhere
    let g = vec_of(x.grad(&loss.backward()).unwrap());
    for i in 0..n {
        for ch in 0..c {
            for k in 0..s * s {
                let idx = (i * c + ch) * s * s + k;
                let e = if ch == labels[i] as usize {
                    w as f64 * (sigmoid(logits[idx] as f64) - targets[i * s * s + k] as f64)
                        / (n * s * s) as f64
                } else {
                    0.0
                };
                assert!(
                    (g[idx] as f64 - e).abs() < 1e-7,
                    "grad {idx}: {} vs {e}",
                    g[idx]
                );
            }
        }
    }

    // class-agnostic: channel 0 whatever the label
    let y = Tensor::<4>::from_data(
        TensorData::new(logits[..n * s * s].to_vec(), [n, 1, s, s]),
        &dev,
    );
    let got = vec_of(mask_loss(y, &targets, &labels, c, true, 1.0).unwrap())[0] as f64;
    let expected: f64 = (0..n * s * s)
        .map(|k| bce(logits[k] as f64, targets[k] as f64))
        .sum::<f64>()
        / (n * s * s) as f64;
    assert!((got - expected).abs() < 1e-6);

    // no RoI: mask_pred.sum() = 0, still differentiable
    let empty = Tensor::<4>::zeros([0, c, 28, 28], &dev).require_grad();
    let zero = mask_loss(empty.clone(), &[], &[], c, false, 1.0).unwrap();
    assert_eq!(vec_of(zero.clone()), vec![0.0]);
    let _ = zero.backward();

    // bad input is an error
    assert!(matches!(
        mask_loss(x.clone(), &targets, &[2, 3], c, false, 1.0),
        Err(MaskHeadError::Label { roi: 1, .. })
    ));
    assert!(matches!(
        mask_loss(x, &targets[1..], &labels, c, false, 1.0),
        Err(MaskHeadError::Shape { .. })
    ));
}

#[test]
fn head_loss_uses_config_weight() {
    let dev = device();
    let cfg: FcnMaskHeadConfig = serde_json::from_value(json!({
        "num_convs": 1, "in_channels": 4, "conv_out_channels": 4, "num_classes": 3,
        "loss_mask": {"type": "CrossEntropyLoss", "use_mask": true, "loss_weight": 2.5}
    }))
    .unwrap();
    let head = FcnMaskHead::new(&cfg, &dev).unwrap();
    let x = Tensor::<4>::from_data(
        TensorData::new(uniform(2 * 4 * 14 * 14, 3), [2, 4, 14, 14]),
        &dev,
    );
    let pred = head.forward(x);
    let targets: Vec<f32> = uniform(2 * 28 * 28, 4)
        .iter()
        .map(|&v| (v > 0.5) as u8 as f32)
        .collect();
    let a = vec_of(head.loss(pred.clone(), &targets, &[1, 2]).unwrap())[0];
    let b = vec_of(mask_loss(pred, &targets, &[1, 2], 3, false, 1.0).unwrap())[0];
    assert!((a - 2.5 * b).abs() < 1e-5 * a.abs().max(1.0));
}

// ---------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------

/// A `(w, h)` 0/1 bitmap with the pixels `x0..x1 × y0..y1` set.
fn rect_mask(w: u32, h: u32, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        image::Luma([u8::from(x >= x0 && x < x1 && y >= y0 && y < y1)])
    })
}

fn ones(v: &[f32]) -> usize {
    v.iter().filter(|&&x| x == 1.0).count()
}

#[test]
fn targets_of_a_rectangle() {
    // pixels x 20..50, y 10..30 of an 80×64 image
    let gt = vec![
        rect_mask(80, 64, (20, 10, 50, 30)),
        rect_mask(80, 64, (0, 0, 40, 32)),
    ];
    let s = 28;
    // the RoI equal to the rectangle: all ones
    let t = mask_targets(&[[20.0, 10.0, 50.0, 30.0]], &[0], &gt, s).unwrap();
    assert_eq!(t.len(), s * s);
    assert!(t.iter().all(|&v| v == 1.0));
    // shifted right by 15 px: the bins whose centre lies left of the edge (x < 49.5 in
    // aligned coordinates), i.e. (p + ½)·30/28 < 15 ⇔ p ≤ 13, are ones
    let t = mask_targets(&[[35.0, 10.0, 65.0, 30.0]], &[0], &gt, s).unwrap();
    for r in 0..s {
        for p in 0..s {
            assert_eq!(t[r * s + p], (p <= 13) as u8 as f32, "row {r} col {p}");
        }
    }
    // 28-px RoI: one sample per bin at each pixel centre, so the target is the crop itself
    let t = mask_targets(&[[10.0, 5.0, 38.0, 33.0]], &[0], &gt, s).unwrap();
    for r in 0..s {
        for p in 0..s {
            let inside = (20..50).contains(&(p + 10)) && (10..30).contains(&(r + 5));
            assert_eq!(t[r * s + p], inside as u8 as f32, "row {r} col {p}");
        }
    }
    // half a pixel further: the edge bin samples halfway between a 1 and a 0 → exactly
    // 0.5, which mmdet's `>= 0.5` keeps (15 columns, not 14)
    let t = mask_targets(&[[35.5, 10.0, 63.5, 38.0]], &[0], &gt, s).unwrap();
    assert_eq!(ones(&t[..s]), 15);
    // a RoI leaving the image is clipped to it first ([-20, 0, 40, 40] → [0, 0, 40, 40])
    let clipped = mask_targets(&[[-20.0, 0.0, 40.0, 40.0]], &[0], &gt, s).unwrap();
    let direct = mask_targets(&[[0.0, 0.0, 40.0, 40.0]], &[0], &gt, s).unwrap();
    assert_eq!(clipped, direct);
    // several RoIs and gts, in RoI order
    let t = mask_targets(
        &[[20.0, 10.0, 50.0, 30.0], [0.0, 0.0, 40.0, 32.0]],
        &[0, 1],
        &gt,
        s,
    )
    .unwrap();
    assert_eq!(t.len(), 2 * s * s);
    assert_eq!(ones(&t[..s * s]), s * s);
    assert_eq!(ones(&t[s * s..]), s * s);
    // none
    assert!(mask_targets(&[], &[], &gt, s).unwrap().is_empty());
    // errors
    assert!(matches!(
        mask_targets(&[[0.0, 0.0, 5.0, 5.0]], &[2], &gt, s),
        Err(MaskOpsError::GtIndex { index: 2, .. })
    ));
    let mixed = vec![
        rect_mask(80, 64, (0, 0, 1, 1)),
        rect_mask(80, 60, (0, 0, 1, 1)),
    ];
    assert!(matches!(
        mask_targets(&[[0.0, 0.0, 5.0, 5.0]], &[0], &mixed, s),
        Err(MaskOpsError::GtShape { .. })
    ));
    assert!(mask_targets(&[[0.0, 0.0, 5.0, 5.0]], &[0, 0], &gt, s).is_err());
    assert_eq!(
        mask_targets(&[[0.0, 0.0, 5.0, 5.0]], &[0], &gt, 0),
        Err(MaskOpsError::MaskSize)
    );

    // many large RoIs go to several threads: same targets, in RoI order
    let big = vec![
        rect_mask(1000, 800, (100, 150, 700, 650)),
        rect_mask(1000, 800, (300, 50, 950, 500)),
    ];
    let r = uniform(80, 31);
    let rois: Vec<Box4> = (0..40)
        .map(|i| {
            let (x, y) = (r[2 * i] * 500.0, r[2 * i + 1] * 350.0);
            [x, y, x + 400.5, y + 380.25]
        })
        .collect();
    let inds: Vec<usize> = (0..40).map(|i| i % 2).collect();
    let all = mask_targets(&rois, &inds, &big, s).unwrap();
    for (i, (roi, &g)) in rois.iter().zip(&inds).enumerate() {
        let one = mask_targets(&[*roi], &[g], &big, s).unwrap();
        assert_eq!(&all[i * s * s..(i + 1) * s * s], &one[..], "RoI {i}");
    }

    // per image, concatenated (`FCNMaskHead.get_targets`)
    let res = SamplingResult {
        pos_inds: vec![0],
        neg_inds: vec![],
        pos_bboxes: vec![[20.0, 10.0, 50.0, 30.0]],
        neg_bboxes: vec![],
        pos_is_gt: vec![true],
        pos_assigned_gt_inds: vec![0],
        pos_gt_bboxes: vec![[20.0, 10.0, 50.0, 30.0]],
        pos_gt_labels: vec![0],
        num_gts: 2,
    };
    let both = get_targets(&[res.clone(), res], &[gt.clone(), gt], s).unwrap();
    assert_eq!(ones(&both), 2 * s * s);
}

/// The host RoIAlign equals mmcv's (mona-core's f64 port of the CPU kernel, and the
/// tensor op) on a random map, including RoIs leaving it.
#[test]
fn host_roi_align_matches_mmcv_reference() {
    let (h, w) = (23usize, 31usize);
    let map = uniform(h * w, 5);
    let rois: Vec<Box4> = vec![
        [3.0, 2.0, 20.0, 17.0],
        [0.0, 0.0, 31.0, 23.0],
        [-4.0, -3.0, 9.5, 8.25],
        [25.0, 19.0, 40.0, 30.0],
        [7.3, 4.1, 7.9, 21.6],
        [12.0, 12.0, 12.0, 12.0],
    ];
    let cfg = RoiAlignConfig::new(7, 1.0, 0);
    let dev = Device::flex();
    let feat = Tensor::<4>::from_data(TensorData::new(map.clone(), [1, 1, h, w]), &dev);
    let with_idx: Vec<[f32; 5]> = rois.iter().map(|b| [0.0, b[0], b[1], b[2], b[3]]).collect();
    let f64s: Vec<f64> = map.iter().map(|&v| v as f64).collect();
    let expected = reference::forward(&f64s, [1, 1, h, w], &with_idx, &cfg);
    let tensor = vec_of(roi_align(feat, &with_idx, &cfg).unwrap());
    for (i, roi) in rois.iter().enumerate() {
        let ours = roi_align_single(&map, (h, w), roi, 7);
        for k in 0..49 {
            let e = expected[i * 49 + k];
            assert!(
                (ours[k] as f64 - e).abs() < 1e-5,
                "roi {i} bin {k}: {} vs {e}",
                ours[k]
            );
            assert!((ours[k] - tensor[i * 49 + k]).abs() < 1e-5);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Paste
// ---------------------------------------------------------------------------------------

fn pixels(m: &GrayImage) -> Vec<(u32, u32)> {
    m.enumerate_pixels()
        .filter(|(_, _, p)| p.0[0] != 0)
        .map(|(x, y, _)| (x, y))
        .collect()
}

/// `got == expected`, reporting sizes and the first difference rather than both lists.
fn same(got: &[(u32, u32)], expected: &[(u32, u32)]) {
    let first = got.iter().zip(expected).position(|(a, b)| a != b);
    assert!(
        got == expected,
        "{} pixels, expected {}; first difference at {first:?}",
        got.len(),
        expected.len()
    );
}

fn box_pixels(x0: u32, y0: u32, x1: u32, y1: u32) -> Vec<(u32, u32)> {
    (y0..y1)
        .flat_map(|y| (x0..x1).map(move |x| (x, y)))
        .collect()
}

#[test]
fn paste_all_ones_and_half_masks() {
    let s = 28;
    let all = vec![1.0f32; s * s];
    let m = paste_mask(&all, (s, s), &[10.0, 20.0, 40.0, 60.0], (80, 100), 0.5);
    assert_eq!(m.dimensions(), (100, 80));
    assert!(m.as_raw().iter().all(|&v| v <= 1));
    same(&pixels(&m), &box_pixels(10, 20, 40, 60));
    // the left 14 columns: the left half of the box (15 of its 30 columns)
    let half: Vec<f32> = (0..s * s).map(|i| (i % s < 14) as u8 as f32).collect();
    let m = paste_mask(&half, (s, s), &[10.0, 20.0, 40.0, 60.0], (80, 100), 0.5);
    same(&pixels(&m), &box_pixels(10, 20, 25, 60));
    // the top half
    let top: Vec<f32> = (0..s * s).map(|i| (i / s < 14) as u8 as f32).collect();
    let m = paste_mask(&top, (s, s), &[10.0, 20.0, 40.0, 60.0], (80, 100), 0.5);
    same(&pixels(&m), &box_pixels(10, 20, 40, 40));
    // a box leaving the image is cut at the border
    let m = paste_mask(&all, (s, s), &[-10.0, 70.0, 20.0, 90.0], (80, 100), 0.5);
    same(&pixels(&m), &box_pixels(0, 70, 20, 80));
    // entirely outside: empty
    let m = paste_mask(&all, (s, s), &[150.0, 20.0, 180.0, 60.0], (80, 100), 0.5);
    assert!(pixels(&m).is_empty());
}

/// Naive `_do_paste_mask` over the whole image (mmdet's GPU path, `skip_empty=False`) in
/// f64: the probabilities before thresholding.
fn naive_paste(probs: &[f32], s: usize, b: &Box4, (h, w): (usize, usize)) -> Vec<f64> {
    let b: Vec<f64> = b.iter().map(|&v| v as f64).collect();
    let at = |y: i64, x: i64| -> f64 {
        if y >= 0 && x >= 0 && (y as usize) < s && (x as usize) < s {
            probs[y as usize * s + x as usize] as f64
        } else {
            0.0
        }
    };
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        let gy = (y as f64 + 0.5 - b[1]) / (b[3] - b[1]) * 2.0 - 1.0;
        let iy = ((gy + 1.0) * s as f64 - 1.0) / 2.0;
        for x in 0..w {
            let gx = (x as f64 + 0.5 - b[0]) / (b[2] - b[0]) * 2.0 - 1.0;
            let ix = ((gx + 1.0) * s as f64 - 1.0) / 2.0;
            let (x0, y0) = (ix.floor(), iy.floor());
            let (fx, fy) = (ix - x0, iy - y0);
            let (x0, y0) = (x0 as i64, y0 as i64);
            out[y * w + x] = at(y0, x0) * (1.0 - fx) * (1.0 - fy)
                + at(y0, x0 + 1) * fx * (1.0 - fy)
                + at(y0 + 1, x0) * (1.0 - fx) * fy
                + at(y0 + 1, x0 + 1) * fx * fy;
        }
    }
    out
}

#[test]
fn paste_matches_naive_reference_on_random_masks() {
    let s = 28;
    let (h, w) = (57usize, 73usize);
    let r = uniform(40, 17);
    let mut checked = 0;
    for k in 0..8 {
        let probs = uniform(s * s, 100 + k as u64);
        let (x0, y0) = (r[4 * k] * 90.0 - 15.0, r[4 * k + 1] * 70.0 - 10.0);
        let b: Box4 = [
            x0,
            y0,
            x0 + 3.0 + r[4 * k + 2] * 50.0,
            y0 + 3.0 + r[4 * k + 3] * 40.0,
        ];
        let reference = naive_paste(&probs, s, &b, (h, w));
        for thr in [0.3f32, 0.5, 0.7] {
            let m = paste_mask(&probs, (s, s), &b, (h as u32, w as u32), thr);
            for (i, &v) in m.as_raw().iter().enumerate() {
                let e = reference[i];
                if (e - thr as f64).abs() > 1e-5 {
                    assert_eq!(
                        v,
                        (e >= thr as f64) as u8,
                        "box {k} pixel {i}: {e} vs {thr}"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 8 * 3 * h * w - 50);
}

#[test]
fn seg_masks_rescale_to_the_original_image() {
    let s = 28;
    let mut probs = vec![1.0f32; s * s];
    probs.extend((0..s * s).map(|i| (i % s < 14) as u8 as f32));
    // input boxes at scale 2 of the original → [10, 20, 40, 60] in a 80×100 original
    let boxes = [[20.0, 40.0, 80.0, 120.0], [20.0, 40.0, 80.0, 120.0]];
    let sf = [2.0f32; 4];
    let masks = get_seg_masks(&probs, s, &boxes, (80, 100), sf, true, 0.5).unwrap();
    assert_eq!(masks.len(), 2);
    assert_eq!(masks[0].dimensions(), (100, 80));
    same(&pixels(&masks[0]), &box_pixels(10, 20, 40, 60));
    same(&pixels(&masks[1]), &box_pixels(10, 20, 25, 60));
    // rescale = false: the input-sized canvas (round(80·2), round(100·2)), boxes unchanged
    let masks = get_seg_masks(&probs, s, &boxes, (80, 100), sf, false, 0.5).unwrap();
    assert_eq!(masks[0].dimensions(), (200, 160));
    // a 60×80 box: the bilinear weights of the corner pixels, 0.733·0.675, fall below 0.5
    let corners = [(20, 40), (79, 40), (20, 119), (79, 119)];
    let expected: Vec<(u32, u32)> = box_pixels(20, 40, 80, 120)
        .into_iter()
        .filter(|p| !corners.contains(p))
        .collect();
    let got = pixels(&masks[0]);
    same(&got, &expected);
    // nothing detected
    assert!(
        get_seg_masks(&[], s, &[], (80, 100), sf, true, 0.5)
            .unwrap()
            .is_empty()
    );
    // bad input
    assert!(matches!(
        get_seg_masks(&probs[1..], s, &boxes, (80, 100), sf, true, 0.5),
        Err(MaskOpsError::Length { .. })
    ));
    assert!(matches!(
        get_seg_masks(&probs, s, &boxes, (80, 100), sf, true, -1.0),
        Err(MaskOpsError::Threshold(_))
    ));
    assert!(matches!(
        get_seg_masks(&probs, s, &boxes, (80, 100), [0.0; 4], true, 0.5),
        Err(MaskOpsError::ScaleFactor(_))
    ));
}

// ---------------------------------------------------------------------------------------
// RLE
// ---------------------------------------------------------------------------------------

#[test]
fn rle_round_trip() {
    // pycocotools order: down the columns. [[0,1,1],[0,0,1]] → 0,0 | 1,0 | 1,1 → runs 2,1,1,2
    let m = GrayImage::from_raw(3, 2, vec![0, 1, 1, 0, 0, 1]).unwrap();
    let hotcoco::Segmentation::CompressedRle { size, counts } = encode_rle(&m).unwrap() else {
        panic!("not a compressed RLE");
    };
    assert_eq!(size, [2, 3]);
    let rle = hotcoco::mask::rle_from_string(&counts, 2, 3).unwrap();
    assert_eq!(rle.counts, vec![2, 1, 1, 2]);

    let (w, h) = (53u32, 37u32);
    let v = uniform((w * h) as usize, 23);
    let m = GrayImage::from_fn(w, h, |x, y| {
        image::Luma([u8::from(v[(y * w + x) as usize] > 0.6)])
    });
    let hotcoco::Segmentation::CompressedRle { size, counts } = encode_rle(&m).unwrap() else {
        panic!("not a compressed RLE");
    };
    assert_eq!(size, [h, w]);
    let rle = hotcoco::mask::rle_from_string(&counts, h, w).unwrap();
    let decoded = hotcoco::mask::decode(&rle);
    for x in 0..w {
        for y in 0..h {
            assert_eq!(
                decoded[(x * h + y) as usize],
                m.get_pixel(x, y).0[0],
                "pixel ({x}, {y})"
            );
        }
    }
    let count = m.as_raw().iter().filter(|&&p| p != 0).count() as u64;
    assert_eq!(hotcoco::mask::area(&rle), count);
    // empty and full masks
    for fill in [0u8, 1] {
        let m = GrayImage::from_pixel(4, 3, image::Luma([fill]));
        let hotcoco::Segmentation::CompressedRle { counts, .. } = encode_rle(&m).unwrap() else {
            panic!()
        };
        let rle = hotcoco::mask::rle_from_string(&counts, 3, 4).unwrap();
        assert_eq!(hotcoco::mask::area(&rle), 12 * fill as u64);
    }
}
