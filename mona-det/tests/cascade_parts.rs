//! The Cascade Mask R-CNN foundations against hand-computed numbers: the multi-level RoI
//! extractor (configs of the Mona COCO model), the RPN head (parameter names, shapes, loss,
//! proposals) and the random sampler inside the RPN targets.

use burn::tensor::{Device, Tensor, TensorData};
use mona_core::params::param_infos;
use mona_det::ops::boxes::Box4;
use mona_det::retina::{GtInstances, ImageMeta};
use mona_det::roi::{Roi, SingleRoIExtractor, SingleRoIExtractorConfig};
use mona_det::rpn::{
    Proposals, RpnHead, RpnHeadConfig, RpnLogic, RpnProposalConfig, RpnTrainConfig,
};
use mona_det::sampler::SamplerRng;
use serde_json::json;

fn device() -> Device {
    Device::flex().autodiff()
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_into_vec().unwrap()
}

fn extractor_cfg(out: usize) -> SingleRoIExtractorConfig {
    serde_json::from_value(json!({
        "type": "SingleRoIExtractor",
        "roi_layer": {"type": "RoIAlign", "output_size": out, "sampling_ratio": 0},
        "out_channels": 2,
        "featmap_strides": [4, 8, 16, 32]
    }))
    .unwrap()
}

/// Level `l` holds the linear ramp `f(y, x) = (l + 1)·(100 + 2y + 3x)` (channel 0) and its
/// negative (channel 1). Bilinear interpolation is exact on a ramp, and the samples of a bin
/// are symmetric about its centre, so every bin of a RoI that stays inside the map reads
/// `f` at the bin centre `(y1·s − ½ + (i + ½)·h·s/P, …)`.
#[test]
fn extractor_pools_each_roi_from_its_level() {
    let dev = device();
    let (img_h, img_w) = (512usize, 640usize);
    let feats: Vec<Tensor<4>> = [4usize, 8, 16, 32, 64]
        .iter()
        .enumerate()
        .map(|(l, &s)| {
            let (h, w) = (img_h / s, img_w / s);
            let mut v = Vec::with_capacity(2 * h * w);
            for sign in [1.0f32, -1.0] {
                for y in 0..h {
                    for x in 0..w {
                        v.push(sign * (l as f32 + 1.0) * (100.0 + 2.0 * y as f32 + 3.0 * x as f32));
                    }
                }
            }
            Tensor::<4>::from_data(TensorData::new(v, [1, 2, h, w]), &dev)
        })
        .collect();
    // scales √(wh) 480 (level 3), 40 (0), 300 (2), 150 (1); all samples inside the maps
    let rois: Vec<Roi> = vec![
        [0.0, 100.0, 20.0, 600.0, 480.0],
        [0.0, 20.0, 24.0, 60.0, 64.0],
        [0.0, 100.0, 120.0, 400.0, 420.0],
        [0.0, 50.0, 30.0, 200.0, 180.0],
    ];
    for (out, levels) in [(7usize, [3usize, 0, 2, 1]), (14, [3, 0, 2, 1])] {
        let e = SingleRoIExtractor::new(&extractor_cfg(out)).unwrap();
        assert_eq!(e.map_roi_levels(&rois, 4), levels);
        let y = e.forward(&feats, &rois).unwrap();
        assert_eq!(y.dims(), [4, 2, out, out]);
        let v = values(y);
        for (n, roi) in rois.iter().enumerate() {
            let l = levels[n];
            let s = 1.0 / [4.0, 8.0, 16.0, 32.0][l];
            let (bw, bh) = (
                (roi[3] - roi[1]) * s / out as f32,
                (roi[4] - roi[2]) * s / out as f32,
            );
            for i in 0..out {
                for j in 0..out {
                    let cy = roi[2] * s - 0.5 + (i as f32 + 0.5) * bh;
                    let cx = roi[1] * s - 0.5 + (j as f32 + 0.5) * bw;
                    let f = (l as f32 + 1.0) * (100.0 + 2.0 * cy + 3.0 * cx);
                    let at = |c: usize| v[((n * 2 + c) * out + i) * out + j];
                    assert!(
                        (at(0) - f).abs() < 1e-3 * f,
                        "roi {n} bin ({i},{j}): {} vs {f}",
                        at(0)
                    );
                    assert!((at(1) + f).abs() < 1e-3 * f);
                }
            }
        }
    }
}

/// The backward of the extractor reaches exactly the maps its RoIs read, with the total
/// weight of each RoI bin (1 per output element, as RoIAlign averages).
#[test]
fn extractor_gradient_goes_to_the_chosen_levels() {
    let dev = device();
    let feats: Vec<Tensor<4>> = [4usize, 8, 16, 32]
        .iter()
        .map(|&s| Tensor::<4>::ones([2, 2, 256 / s, 256 / s], &dev).require_grad())
        .collect();
    let e = SingleRoIExtractor::new(&extractor_cfg(7)).unwrap();
    // inside the image: level 0 (image 1), level 1 (image 0)
    let rois: Vec<Roi> = vec![
        [1.0, 10.0, 10.0, 50.0, 60.0],
        [0.0, 30.0, 30.0, 180.0, 170.0],
    ];
    let y = e.forward(&feats, &rois).unwrap();
    let grads = y.sum().backward();
    let sums: Vec<Option<f32>> = feats
        .iter()
        .map(|f| f.grad(&grads).map(|g| g.sum().into_scalar::<f32>()))
        .collect();
    // one RoI per used level: 2 channels × 49 bins, each bin's weights sum to 1
    assert!((sums[0].unwrap() - 98.0).abs() < 1e-3, "{sums:?}");
    assert!((sums[1].unwrap() - 98.0).abs() < 1e-3, "{sums:?}");
    assert!(sums[2].is_none_or(|s| s == 0.0));
    assert!(sums[3].is_none_or(|s| s == 0.0));
    // and only image 1 of level 0 received it
    let g0 = feats[0].grad(&grads).unwrap();
    let img0: f32 = g0.clone().narrow(0, 0, 1).sum().into_scalar::<f32>();
    assert_eq!(img0, 0.0);
}

fn rpn_cfg() -> RpnHeadConfig {
    serde_json::from_value(json!({
        "type": "RPNHead",
        "in_channels": 8,
        "feat_channels": 6,
        "anchor_generator": {"type": "AnchorGenerator", "scales": [8], "ratios": [0.5, 1.0, 2.0],
                             "strides": [4, 8, 16, 32, 64]},
        "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0.0, 0.0, 0.0, 0.0],
                       "target_stds": [1.0, 1.0, 1.0, 1.0]},
        "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": true, "loss_weight": 1.0},
        "loss_bbox": {"type": "SmoothL1Loss", "beta": 0.1111111111111111, "loss_weight": 1.0}
    }))
    .unwrap()
}

fn train_cfg(allowed_border: f32) -> RpnTrainConfig {
    serde_json::from_value(json!({
        "assigner": {"type": "MaxIoUAssigner", "pos_iou_thr": 0.7, "neg_iou_thr": 0.3,
                     "min_pos_iou": 0.3, "match_low_quality": true, "ignore_iof_thr": -1},
        "sampler": {"type": "RandomSampler", "num": 256, "pos_fraction": 0.5, "neg_pos_ub": -1,
                    "add_gt_as_proposals": false},
        "allowed_border": allowed_border,
        "pos_weight": -1,
        "debug": false
    }))
    .unwrap()
}

#[test]
fn rpn_head_keys_shapes_and_anchors() {
    let dev = device();
    let head = RpnHead::new(&rpn_cfg(), &dev).unwrap();
    let keys: Vec<(String, Vec<usize>)> = param_infos(&head)
        .into_iter()
        .map(|p| (p.key, p.shape))
        .collect();
    assert_eq!(
        keys,
        vec![
            ("rpn_conv.weight".to_string(), vec![6, 8, 3, 3]),
            ("rpn_conv.bias".to_string(), vec![6]),
            ("rpn_cls.weight".to_string(), vec![3, 6, 1, 1]),
            ("rpn_cls.bias".to_string(), vec![3]),
            ("rpn_reg.weight".to_string(), vec![12, 6, 1, 1]),
            ("rpn_reg.bias".to_string(), vec![12]),
        ]
    );
    let feats: Vec<Tensor<4>> = [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2)]
        .iter()
        .map(|&(h, w)| Tensor::<4>::ones([2, 8, h, w], &dev))
        .collect();
    let (cls, reg) = head.forward(&feats);
    for (l, &(h, w)) in [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2)]
        .iter()
        .enumerate()
    {
        assert_eq!(cls[l].dims(), [2, 3, h, w]);
        assert_eq!(reg[l].dims(), [2, 12, h, w]);
    }
    // anchors: base size = stride, scale 8, ratios (½, 1, 2) → h/w ratio √r
    let logic = RpnLogic::new(&rpn_cfg()).unwrap();
    let base = &logic.anchors.base_anchors[0];
    let (w0, h0) = (32.0 * 2f64.sqrt(), 32.0 / 2f64.sqrt());
    let expected = [
        [-w0 / 2.0, -h0 / 2.0, w0 / 2.0, h0 / 2.0],
        [-16.0, -16.0, 16.0, 16.0],
        [-h0 / 2.0, -w0 / 2.0, h0 / 2.0, w0 / 2.0],
    ];
    for (a, e) in base.iter().zip(&expected) {
        for k in 0..4 {
            assert!((a[k] - e[k]).abs() < 1e-9, "{a:?} vs {e:?}");
        }
    }
    assert_eq!(
        logic.anchors.base_anchors[4][1],
        [-256.0, -256.0, 256.0, 256.0]
    );
}

/// One level, stride 16, one 16×16 anchor per location on a 2×2 map of a 32×32 image:
/// anchors a0 [-8,-8,8,8], a1 [8,-8,24,8], a2 [-8,8,8,24], a3 [8,8,24,24].
fn tiny_cfg(strides: &[usize]) -> RpnHeadConfig {
    let mut c = rpn_cfg();
    c.anchor_generator.scales = Some(vec![1.0]);
    c.anchor_generator.ratios = vec![1.0];
    c.anchor_generator.strides = strides.to_vec();
    c
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn bce(x: f64, t: f64) -> f64 {
    -(t * sigmoid(x).ln() + (1.0 - t) * (1.0 - sigmoid(x)).ln())
}

fn smooth_l1(d: f64) -> f64 {
    let beta = 1.0 / 9.0;
    let d = d.abs();
    if d < beta {
        0.5 * d * d / beta
    } else {
        d - 0.5 * beta
    }
}

#[test]
fn rpn_loss_on_a_hand_computed_case() {
    let dev = device();
    let logic = RpnLogic::new(&tiny_cfg(&[16])).unwrap();
    let logits = [0.3f32, -1.2, 0.8, 1.5];
    let deltas = [
        [0.1f32, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.05, -0.2, 0.01, 0.5],
    ];
    // (B, A, H, W) with the location order y, x = anchor index
    let cls =
        Tensor::<4>::from_data(TensorData::new(logits.to_vec(), [1, 1, 2, 2]), &dev).require_grad();
    let mut reg_v = vec![0f32; 16];
    for (i, d) in deltas.iter().enumerate() {
        for k in 0..4 {
            reg_v[k * 4 + i] = d[k];
        }
    }
    let reg = Tensor::<4>::from_data(TensorData::new(reg_v, [1, 4, 2, 2]), &dev).require_grad();
    let meta = ImageMeta {
        img_shape: (32, 32),
        pad_shape: (32, 32),
    };
    // IoU with a3 = 196/316 = 0.62 < 0.7: positive only through the low-quality match
    let gt = GtInstances {
        bboxes: vec![[10.0, 6.0, 26.0, 22.0]],
        labels: vec![0],
    };
    // target of a3: (dx, dy, dw, dh) = (2/16, −2/16, 0, 0)
    let target = [0.125f64, -0.125, 0.0, 0.0];

    // allowed_border −1: all 4 anchors valid and sampled (1 positive, 3 negatives)
    let (lc, lb) = logic
        .loss(
            &train_cfg(-1.0),
            std::slice::from_ref(&cls),
            std::slice::from_ref(&reg),
            &[meta],
            std::slice::from_ref(&gt),
            &mut [SamplerRng::new(0)],
        )
        .unwrap();
    let cls_sum: f64 = (0..4)
        .map(|i| bce(logits[i] as f64, if i == 3 { 1.0 } else { 0.0 }))
        .sum();
    let box_sum: f64 = (0..4)
        .map(|k| smooth_l1(deltas[3][k] as f64 - target[k]))
        .sum();
    let got_c = lc[0].clone().into_scalar::<f32>() as f64;
    let got_b = lb[0].clone().into_scalar::<f32>() as f64;
    assert!(
        (got_c - cls_sum / 4.0).abs() < 1e-5,
        "{got_c} vs {}",
        cls_sum / 4.0
    );
    assert!(
        (got_b - box_sum / 4.0).abs() < 1e-5,
        "{got_b} vs {}",
        box_sum / 4.0
    );
    let grads = (lc[0].clone() + lb[0].clone()).backward();
    let gc: Vec<f32> = values(cls.grad(&grads).unwrap());
    for i in 0..4 {
        let t = if i == 3 { 1.0 } else { 0.0 };
        let e = (sigmoid(logits[i] as f64) - t) / 4.0;
        assert!(
            (gc[i] as f64 - e).abs() < 1e-5,
            "d logit {i}: {} vs {e}",
            gc[i]
        );
    }
    // only the positive anchor's deltas get a box gradient
    let gr = values(reg.grad(&grads).unwrap());
    for k in 0..4 {
        for i in 0..3 {
            assert_eq!(gr[k * 4 + i], 0.0);
        }
    }
    // d/dx smooth_l1 = d/β inside β: (0.05 − 0.125) · 9 / 4 for dx
    assert!((gr[3] as f64 - (0.05 - 0.125) * 9.0 / 4.0).abs() < 1e-5);

    // allowed_border 0: only a3 lies inside the image; avg_factor 1
    let t = logic.targets(
        &train_cfg(0.0),
        &[(2, 2)],
        &meta,
        &gt,
        &mut SamplerRng::new(0),
    );
    assert_eq!((t.num_pos, t.num_neg), (1, 0));
    assert_eq!(t.label_weights, vec![0.0, 0.0, 0.0, 1.0]);
    assert_eq!(t.labels, vec![0.0, 0.0, 0.0, 1.0]);
    assert_eq!(t.bbox_weights, vec![0.0, 0.0, 0.0, 1.0]);
    for (got, want) in t.bbox_targets[3].iter().zip(&target) {
        assert!((*got as f64 - want).abs() < 1e-6);
    }
    let (lc, _) = logic
        .loss(
            &train_cfg(0.0),
            &[cls],
            &[reg],
            &[meta],
            &[gt],
            &mut [SamplerRng::new(0)],
        )
        .unwrap();
    let got = lc[0].clone().into_scalar::<f32>() as f64;
    assert!((got - bce(1.5, 1.0)).abs() < 1e-5);
}

/// Many anchors: the sampler caps the RPN at 256 per image, half positives at most.
#[test]
fn rpn_targets_are_sampled() {
    let logic = RpnLogic::new(&tiny_cfg(&[4])).unwrap();
    // 40×40 map of 4×4 anchors on a 160×160 image, a GT covering a quarter of it
    let meta = ImageMeta {
        img_shape: (160, 160),
        pad_shape: (160, 160),
    };
    let gt = GtInstances {
        bboxes: vec![[0.0, 0.0, 80.0, 80.0]],
        labels: vec![0],
    };
    let t = logic.targets(
        &train_cfg(-1.0),
        &[(40, 40)],
        &meta,
        &gt,
        &mut SamplerRng::new(3),
    );
    // 4×4 anchors never reach IoU 0.3 with an 80×80 box, and the best one (16/6400) is
    // below min_pos_iou 0.3, so the low-quality step adds none: all 256 are negatives
    assert_eq!(t.num_pos, 0);
    assert_eq!(t.num_neg, 256);
    assert_eq!(t.label_weights.iter().filter(|&&w| w > 0.0).count(), 256);
    // same seed, same anchors
    let again = logic.targets(
        &train_cfg(-1.0),
        &[(40, 40)],
        &meta,
        &gt,
        &mut SamplerRng::new(3),
    );
    assert_eq!(again, t);
    // a GT equal to one anchor: that anchor is the only positive (neighbours do not overlap)
    let gt = GtInstances {
        bboxes: vec![[38.0, 38.0, 42.0, 42.0]],
        labels: vec![0],
    };
    let t = logic.targets(
        &train_cfg(-1.0),
        &[(40, 40)],
        &meta,
        &gt,
        &mut SamplerRng::new(3),
    );
    assert_eq!((t.num_pos, t.num_neg), (1, 255));
    assert_eq!(t.labels.iter().position(|&l| l == 1.0), Some(10 * 40 + 10));
}

#[test]
fn rpn_proposals_per_level_nms() {
    let dev = Device::flex();
    let logic = RpnLogic::new(&tiny_cfg(&[16, 32])).unwrap();
    let meta = ImageMeta {
        img_shape: (32, 32),
        pad_shape: (32, 32),
    };
    // level 0: a2 is shifted right by one width onto a3 (same box, lower score than a2)
    let cls0 = Tensor::<4>::from_data(
        TensorData::new(vec![2.0f32, 1.0, 0.5, 0.0], [1, 1, 2, 2]),
        &dev,
    );
    let mut reg0 = vec![0f32; 16];
    reg0[2] = 1.0; // channel dx, location a2
    let reg0 = Tensor::<4>::from_data(TensorData::new(reg0, [1, 4, 2, 2]), &dev);
    // level 1: the 32×32 anchor at (0, 0) moved and halved onto [8, 8, 24, 24]
    let half = 0.5f32.ln();
    let cls1 = Tensor::<4>::from_data(TensorData::new(vec![1.5f32], [1, 1, 1, 1]), &dev);
    let reg1 = Tensor::<4>::from_data(
        TensorData::new(vec![0.5f32, 0.5, half, half], [1, 4, 1, 1]),
        &dev,
    );
    let cfg = |nms_pre: usize, max_per_img: usize| -> RpnProposalConfig {
        serde_json::from_value(json!({
            "nms_across_levels": false, "nms_pre": nms_pre, "nms_post": max_per_img,
            "max_per_img": max_per_img, "nms": {"type": "nms", "iou_threshold": 0.7},
            "min_bbox_size": 0
        }))
        .unwrap()
    };
    let run = |c: RpnProposalConfig| -> Proposals {
        logic
            .proposals(
                &c,
                &[cls0.clone(), cls1.clone()],
                &[reg0.clone(), reg1.clone()],
                0,
                &meta,
            )
            .unwrap()
    };
    let p = run(cfg(2000, 2000));
    let expected: Vec<(Box4, f64)> = vec![
        ([0.0, 0.0, 8.0, 8.0], sigmoid(2.0)),
        ([8.0, 8.0, 24.0, 24.0], sigmoid(1.5)), // level 1: not suppressed by level 0
        ([8.0, 0.0, 24.0, 8.0], sigmoid(1.0)),
        ([8.0, 8.0, 24.0, 24.0], sigmoid(0.5)), // a2; a3 (same box, level 0) is suppressed
    ];
    assert_eq!(p.bboxes.len(), expected.len(), "{p:?}");
    for (k, (b, s)) in expected.iter().enumerate() {
        for j in 0..4 {
            assert!(
                (p.bboxes[k][j] - b[j]).abs() < 1e-4,
                "{k}: {:?} vs {b:?}",
                p.bboxes[k]
            );
        }
        assert!((p.scores[k] as f64 - s).abs() < 1e-6);
    }
    // max_per_img cuts the list; nms_pre keeps the best anchor of each level
    assert_eq!(run(cfg(2000, 3)).bboxes.len(), 3);
    let p = run(cfg(1, 1000));
    assert_eq!(p.bboxes.len(), 2);
    assert!((p.scores[0] as f64 - sigmoid(2.0)).abs() < 1e-6);
    assert!((p.scores[1] as f64 - sigmoid(1.5)).abs() < 1e-6);
}

/// Cost of the extractor at Cascade R-CNN scale (`cargo test --release -p mona-det --test
/// cascade_parts -- --ignored --nocapture`): 512 RoIs of 16–400 px on an 800 × 1344 image's
/// four 256-channel FPN maps, forward + backward, timed on the CPU backend.
#[test]
#[ignore]
fn extractor_cost_at_coco_scale() {
    let dev = device();
    let feats: Vec<Tensor<4>> = [4usize, 8, 16, 32]
        .iter()
        .map(|&s| {
            Tensor::<4>::random(
                [1, 256, 800 / s, 1344 / s],
                burn::tensor::Distribution::Default,
                &dev,
            )
            .require_grad()
        })
        .collect();
    let mut rng = SamplerRng::new(5);
    let rois: Vec<Roi> = (0..512)
        .map(|_| {
            let side = 16.0 + rng.below(384) as f32;
            let (x, y) = (rng.below(1344 - 400) as f32, rng.below(800 - 400) as f32);
            [0.0, x, y, x + side, y + side * 0.75]
        })
        .collect();
    let mut cfg = extractor_cfg(7);
    cfg.out_channels = 256;
    let e = SingleRoIExtractor::new(&cfg).unwrap();
    let run = |feats: &[Tensor<4>]| {
        let t = std::time::Instant::now();
        let y = e.forward(feats, &rois).unwrap();
        let fwd = t.elapsed();
        let grads = y.sum().backward();
        let _ = feats[0].grad(&grads);
        (fwd, t.elapsed())
    };
    for round in 0..2 {
        let (fwd, total) = run(&feats);
        println!("round {round}: forward {fwd:?}, forward + backward {total:?}");
    }
}
