//! The DETR-style training augmentation of the Mona COCO config: `AutoAugment`, mmdet's
//! `RandomCrop` (and its dispatch against mmseg's under the shared name) and `Resize(override)`.

mod common;

use common::{config, rng};
use image::{GrayImage, Luma, Rgb, RgbImage};
use mona_core::config::Config;
use mona_data::masks::mask_bbox;
use mona_data::{
    DataError, Image, MaskAnnotation, MaskAnnotations, Results, Transform, build_pipeline,
    build_transform,
};
use rand::Rng;

const COCO_MONA: &str = "../configs/mona/swin-b_coco/cascade_mask_swin_base_3x_coco_mona.toml";

fn transform(item: &str) -> Box<dyn Transform> {
    let cfg = config(&format!("t = {item}\n"));
    build_transform(&cfg.node("t").unwrap()).unwrap()
}

fn build_err(item: &str) -> String {
    let cfg = config(&format!("t = {item}\n"));
    build_transform(&cfg.node("t").unwrap())
        .err()
        .unwrap()
        .to_string()
}

/// A rectangle 0/1 mask of a `w × h` image covering `b` (integer corners).
fn rect_mask(w: u32, h: u32, b: [f32; 4]) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| {
        let inside =
            (x as f32) >= b[0] && (x as f32) < b[2] && (y as f32) >= b[1] && (y as f32) < b[3];
        Luma([inside as u8])
    })
}

/// A `w × h` detection sample with boxes, labels and one rectangle mask per box.
fn det_sample(w: u32, h: u32, boxes: &[[f32; 4]], labels: &[usize]) -> Results {
    let mut r = Results::new("mem/coco.jpg");
    r.img = Image::U8(RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, 7])
    }));
    r.ori_shape = r.img.shape();
    r.img_shape = r.ori_shape;
    r.gt_bboxes = boxes.to_vec();
    r.gt_labels = labels.to_vec();
    r.gt_masks = Some(boxes.iter().map(|&b| rect_mask(w, h, b)).collect());
    r
}

fn masks(r: &Results) -> &[GrayImage] {
    r.gt_masks.as_deref().expect("gt_masks")
}

/// mmcv `rescale_size` for a `(1333, short)` scale: the `(w, h)` of a `w × h` image.
fn rescaled(w: usize, h: usize, short: usize) -> (usize, usize) {
    let f = (1333.0 / w.max(h) as f64).min(short as f64 / w.min(h) as f64);
    ((w as f64 * f + 0.5) as usize, (h as f64 * f + 0.5) as usize)
}

const SHORTS: [usize; 11] = [480, 512, 544, 576, 608, 640, 672, 704, 736, 768, 800];

// ---------------------------------------------------------------- AutoAugment

#[test]
fn coco_mona_auto_augment_runs_both_policies_with_the_config_sizes() {
    let cfg = Config::from_file(COCO_MONA).unwrap();
    let node = cfg.node("data.train.pipeline.3").unwrap();
    assert_eq!(node.type_name().unwrap(), "AutoAugment");
    let t = build_transform(&node).unwrap();
    assert_eq!(t.name(), "AutoAugment");

    let boxes = [[100.0, 100.0, 300.0, 200.0], [600.0, 50.0, 900.0, 450.0]];
    let mut seen = [0usize; 2];
    for seed in 0..24 {
        let out = t
            .apply(det_sample(1000, 500, &boxes, &[3, 7]), &mut rng(seed))
            .unwrap();
        let [h, w, _] = out.img_shape;
        assert_eq!(out.img.shape(), out.img_shape);

        // Replays the draws in mmdet's order: policy, then each transform's own.
        let mut p = rng(seed);
        let policy = p.random_range(0..2usize);
        seen[policy] += 1;
        let expected = if policy == 0 {
            rescaled(1000, 500, SHORTS[p.random_range(0..11usize)])
        } else {
            // Resize to short 400 / 500 / 600 of a 2:1 image: the short side limits.
            let s1 = [400, 500, 600][p.random_range(0..3usize)];
            let (w1, h1) = (2 * s1, s1);
            let ch = p.random_range(384.min(h1)..=600.min(h1));
            let cw = p.random_range(384.min(w1)..=600.min(w1));
            assert!((384..=600).contains(&ch) && (384..=600).contains(&cw));
            let _offset_y = p.random_range(0..=h1 - ch);
            let _offset_x = p.random_range(0..=w1 - cw);
            rescaled(cw, ch, SHORTS[p.random_range(0..11usize)])
        };
        assert_eq!((w, h), expected, "seed {seed}, policy {policy}");
        // Short side one of the listed scales unless the 1333 long side limits it.
        assert!(w.max(h) <= 1333, "seed {seed}: {w}x{h}");
        assert!(
            SHORTS.contains(&w.min(h)) || w.max(h) == 1333,
            "seed {seed}: {w}x{h}"
        );
        if policy == 0 {
            // 2:1 kept: 960x480 .. 1280x640, then 1333x667 once the long side limits.
            assert!([(960, 480), (1024, 512), (1333, 667)].contains(&(w, h)) || w == 2 * h);
            assert_eq!(out.gt_bboxes.len(), 2);
        }

        // Boxes, labels and masks stay one to one, inside the image, masks image-sized.
        assert_eq!(out.gt_labels.len(), out.gt_bboxes.len());
        assert_eq!(masks(&out).len(), out.gt_bboxes.len());
        for (b, m) in out.gt_bboxes.iter().zip(masks(&out)) {
            assert!(b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= w as f32 && b[3] <= h as f32);
            assert_eq!((m.width() as usize, m.height() as usize), (w, h));
        }
        let f = out.scale_factor.unwrap();
        assert!(f[0] > 0.0 && f[1] > 0.0);
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "both policies should run: {seen:?}"
    );
}

#[test]
fn coco_mona_auto_augment_is_deterministic_per_seed() {
    let cfg = Config::from_file(COCO_MONA).unwrap();
    let t = build_transform(&cfg.node("data.train.pipeline.3").unwrap()).unwrap();
    let boxes = [[10.0, 20.0, 300.0, 400.0]];
    let a = t
        .apply(det_sample(640, 480, &boxes, &[1]), &mut rng(5))
        .unwrap();
    let b = t
        .apply(det_sample(640, 480, &boxes, &[1]), &mut rng(5))
        .unwrap();
    assert_eq!(a, b);
}

#[test]
fn coco_mona_train_pipeline_builds() {
    let cfg = Config::from_file(COCO_MONA).unwrap();
    let p = build_pipeline(&cfg.node("data.train.pipeline").unwrap()).unwrap();
    assert_eq!(
        p.names(),
        [
            "LoadImageFromFile",
            "LoadAnnotations",
            "RandomFlip",
            "AutoAugment",
            "Normalize",
            "Pad",
            "DefaultFormatBundle",
            "Collect"
        ]
    );
}

#[test]
fn auto_augment_errors_name_the_policy_key() {
    let bad = "{ type = \"AutoAugment\", policies = [\n  [{ type = \"Resize\", img_scale = [1333, 800] }],\n  [{ type = \"Resize\", img_scale = [1333, 600] }, { type = \"RandomCrop\", crop_type = \"absolute_range\", crop_size = [600, 384] }],\n] }";
    let e = build_err(bad);
    assert!(e.contains("t.policies.1.1.crop_size"), "{e}");
    assert!(e.contains("min <= max"), "{e}");
    let e = build_err("{ type = \"AutoAugment\", policies = [[{ type = \"Rezise\" }]] }");
    assert!(e.contains("t.policies.0.0"), "{e}");
    let e = build_err("{ type = \"AutoAugment\", policies = [] }");
    assert!(e.contains("t.policies") && e.contains("non-empty"), "{e}");
    let e = build_err("{ type = \"AutoAugment\", policies = [[], [{ type = \"RandomFlip\" }]] }");
    assert!(e.contains("t.policies.0") && e.contains("non-empty"), "{e}");
    let e = build_err(
        "{ type = \"AutoAugment\", policies = [[{ type = \"RandomFlip\" }]], prob = 0.5 }",
    );
    assert!(e.contains("t.prob"), "{e}");
    let e = build_err("{ type = \"AutoAugment\" }");
    assert!(e.contains("t.policies"), "{e}");
}

#[test]
fn auto_augment_picks_policies_uniformly() {
    // Two one-transform policies told apart by their output width.
    let t = transform(
        "{ type = \"AutoAugment\", policies = [\n  [{ type = \"Resize\", img_scale = [20, 10], keep_ratio = false }],\n  [{ type = \"Resize\", img_scale = [30, 10], keep_ratio = false }],\n] }",
    );
    let mut counts = [0usize; 2];
    for seed in 0..400 {
        let r = t
            .apply(
                det_sample(8, 8, &[[1.0, 1.0, 4.0, 4.0]], &[0]),
                &mut rng(seed),
            )
            .unwrap();
        counts[(r.img_shape[1] == 30) as usize] += 1;
    }
    assert_eq!(counts[0] + counts[1], 400);
    assert!((160..=240).contains(&counts[0]), "{counts:?}");
}

// ---------------------------------------------------------------- mmdet RandomCrop

/// Seed 1 draws the offsets (y, x) = (22, 20) for a 40 x 50 crop of a 100 x 80 image: the
/// window is x in [20, 70), y in [22, 62).
fn crop_window_of_seed_1() {
    let mut p = rng(1);
    assert_eq!(
        (p.random_range(0..=40usize), p.random_range(0..=50usize)),
        (22, 20)
    );
}

#[test]
fn det_random_crop_shifts_clips_and_filters_boxes_labels_and_masks() {
    crop_window_of_seed_1();
    let t = transform("{ type = \"RandomCrop\", crop_type = \"absolute\", crop_size = [40, 50] }");
    let boxes = [
        [30.0, 30.0, 50.0, 50.0], // inside
        [10.0, 10.0, 40.0, 40.0], // top-left corner outside
        [75.0, 65.0, 95.0, 78.0], // fully outside: dropped
        [60.0, 50.0, 90.0, 75.0], // bottom-right corner outside
    ];
    let mut r = det_sample(100, 80, &boxes, &[1, 2, 3, 4]);
    r.gt_bboxes_ignore = vec![[0.0, 0.0, 10.0, 10.0], [65.0, 55.0, 85.0, 70.0]];
    r.gt_seg = Some(GrayImage::from_fn(100, 80, |x, y| {
        Luma([(x + 2 * y) as u8])
    }));
    let out = t.apply(r, &mut rng(1)).unwrap();

    assert_eq!(out.img_shape, [40, 50, 3]);
    let Image::U8(img) = &out.img else {
        panic!("8-bit image expected")
    };
    assert_eq!(img.get_pixel(0, 0).0, [20, 22, 7]);
    assert_eq!(out.gt_seg.as_ref().unwrap().get_pixel(0, 0).0, [20 + 44]);
    assert_eq!(
        out.gt_bboxes,
        vec![
            [10.0, 8.0, 30.0, 28.0],
            [0.0, 0.0, 20.0, 18.0],
            [40.0, 28.0, 50.0, 40.0]
        ]
    );
    assert_eq!(out.gt_labels, vec![1, 2, 4]);
    let m = masks(&out);
    assert_eq!(m.len(), 3);
    for (mask, b) in m.iter().zip(&out.gt_bboxes) {
        assert_eq!(mask.dimensions(), (50, 40));
        assert_eq!(mask_bbox(mask), *b, "mask and box stay aligned");
    }
    // Ignored boxes: own filter, the one outside dropped.
    assert_eq!(out.gt_bboxes_ignore, vec![[45.0, 33.0, 50.0, 40.0]]);
}

#[test]
fn det_random_crop_negative_crops() {
    let outside = [[75.0, 65.0, 95.0, 78.0]];
    let strict =
        transform("{ type = \"RandomCrop\", crop_size = [40, 50], allow_negative_crop = false }");
    let e = strict
        .apply(det_sample(100, 80, &outside, &[3]), &mut rng(1))
        .unwrap_err();
    assert!(matches!(
        e,
        DataError::Transform {
            transform: "RandomCrop",
            ..
        }
    ));
    let msg = e.to_string();
    assert!(
        msg.contains("mem/coco.jpg") && msg.contains("allow_negative_crop"),
        "{msg}"
    );

    let lenient =
        transform("{ type = \"RandomCrop\", crop_size = [40, 50], allow_negative_crop = true }");
    let out = lenient
        .apply(det_sample(100, 80, &outside, &[3]), &mut rng(1))
        .unwrap();
    assert_eq!(out.img_shape, [40, 50, 3]);
    assert!(out.gt_bboxes.is_empty() && out.gt_labels.is_empty());
    assert_eq!(out.gt_masks, Some(vec![]));
}

#[test]
fn det_random_crop_absolute_range_on_a_small_image_and_recompute_bbox() {
    // absolute_range [384, 600] of a 300 x 200 image: randint(h, h + 1) = h per side, so the
    // crop is the whole image and no offset is possible.
    let t = transform(
        "{ type = \"RandomCrop\", crop_type = \"absolute_range\", crop_size = [384, 600], allow_negative_crop = true }",
    );
    let out = t
        .apply(
            det_sample(300, 200, &[[5.0, 6.0, 50.0, 60.0]], &[9]),
            &mut rng(3),
        )
        .unwrap();
    assert_eq!(out.img_shape, [200, 300, 3]);
    assert_eq!(out.gt_bboxes, vec![[5.0, 6.0, 50.0, 60.0]]);

    // recompute_bbox: boxes become their masks' boxes (a mask smaller than its box here).
    crop_window_of_seed_1();
    let t = transform("{ type = \"RandomCrop\", crop_size = [40, 50], recompute_bbox = true }");
    let mut r = det_sample(100, 80, &[[30.0, 30.0, 50.0, 50.0]], &[1]);
    r.gt_masks = Some(vec![rect_mask(100, 80, [32.0, 31.0, 40.0, 45.0])]);
    let out = t.apply(r, &mut rng(1)).unwrap();
    assert_eq!(out.gt_bboxes, vec![[12.0, 9.0, 20.0, 23.0]]);
}

#[test]
fn det_random_crop_relative_sizes() {
    let t = transform(
        "{ type = \"RandomCrop\", crop_type = \"relative\", crop_size = [0.5, 0.25], allow_negative_crop = true }",
    );
    let out = t
        .apply(
            det_sample(99, 201, &[[0.0, 0.0, 99.0, 201.0]], &[0]),
            &mut rng(0),
        )
        .unwrap();
    // int(201 * 0.5 + 0.5) = 101, int(99 * 0.25 + 0.5) = 25
    assert_eq!(out.img_shape, [101, 25, 3]);
    assert_eq!(out.gt_bboxes, vec![[0.0, 0.0, 25.0, 101.0]]);
}

#[test]
fn det_random_crop_rejects_mismatched_annotations() {
    let t = transform("{ type = \"RandomCrop\", crop_size = [40, 50] }");
    let mut r = det_sample(100, 80, &[[30.0, 30.0, 50.0, 50.0]], &[1]);
    r.gt_masks = Some(vec![GrayImage::new(10, 10)]);
    let e = t.apply(r, &mut rng(0)).unwrap_err().to_string();
    assert!(
        e.contains("mem/coco.jpg") && e.contains("gt_masks[0] is 10x10"),
        "{e}"
    );
    let mut r = det_sample(100, 80, &[[30.0, 30.0, 50.0, 50.0]], &[1]);
    r.gt_labels.clear();
    let e = t.apply(r, &mut rng(0)).unwrap_err().to_string();
    assert!(e.contains("1 gt_bboxes but 0 gt_labels"), "{e}");
}

#[test]
fn random_crop_build_errors_name_the_key() {
    let e = build_err("{ type = \"RandomCrop\", crop_size = [40, 50], crop_type = \"center\" }");
    assert!(
        e.contains("t.crop_type") && e.contains("absolute_range"),
        "{e}"
    );
    let e =
        build_err("{ type = \"RandomCrop\", crop_size = [40, 50.5], crop_type = \"absolute\" }");
    assert!(e.contains("t.crop_size") && e.contains("integers"), "{e}");
    let e =
        build_err("{ type = \"RandomCrop\", crop_size = [0.5, 1.5], crop_type = \"relative\" }");
    assert!(e.contains("t.crop_size") && e.contains("(0, 1]"), "{e}");
    let e = build_err(
        "{ type = \"RandomCrop\", crop_size = [40, 50], allow_negative_crop = true, cat_max_ratio = 0.75 }",
    );
    assert!(
        e.contains("t.cat_max_ratio") && e.contains("allow_negative_crop"),
        "{e}"
    );
    let e = build_err(
        "{ type = \"RandomCrop\", crop_size = [40, 50], crop_type = \"absolute\", min_size = 3 }",
    );
    assert!(e.contains("min_size"), "{e}");
}

// ---------------------------------------------------------------- dispatch by sample

#[test]
fn random_crop_with_only_crop_size_follows_the_sample() {
    crop_window_of_seed_1();
    let t = transform("{ type = \"RandomCrop\", crop_size = [40, 50] }");
    // Detection sample: mmdet's crop, boxes follow.
    let out = t
        .apply(
            det_sample(100, 80, &[[30.0, 30.0, 50.0, 50.0]], &[1]),
            &mut rng(1),
        )
        .unwrap();
    assert_eq!(out.gt_bboxes, vec![[10.0, 8.0, 30.0, 28.0]]);
    // Segmentation sample: mmseg's crop, the same window.
    let mut r = Results::new("mem/ade.png");
    r.img = Image::U8(RgbImage::new(100, 80));
    r.gt_seg = Some(GrayImage::from_fn(100, 80, |x, y| {
        Luma([(x + 2 * y) as u8])
    }));
    let out = t.apply(r, &mut rng(1)).unwrap();
    assert_eq!(out.img_shape, [40, 50, 3]);
    assert_eq!(out.gt_seg.unwrap().get_pixel(0, 0).0, [64]);
}

#[test]
fn mmseg_random_crop_keeps_its_semantics() {
    // cat_max_ratio marks mmseg's crop: it refuses boxes rather than guess mmdet's rule.
    let t = transform("{ type = \"RandomCrop\", crop_size = [40, 50], cat_max_ratio = 0.75 }");
    let e = t
        .apply(
            det_sample(100, 80, &[[30.0, 30.0, 50.0, 50.0]], &[1]),
            &mut rng(1),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("gt_bboxes"), "{e}");
    // On a two-class map a 0.75 ratio is met by a window over both halves.
    let mut r = Results::new("mem/ade.png");
    r.img = Image::U8(RgbImage::new(100, 80));
    r.gt_seg = Some(GrayImage::from_fn(100, 80, |x, _| Luma([(x >= 45) as u8])));
    let out = t.apply(r, &mut rng(0)).unwrap();
    assert_eq!(out.img_shape, [40, 50, 3]);
    let e = build_err("{ type = \"RandomCrop\", crop_size = [0, 50] }");
    assert!(e.contains("t.crop_size") && e.contains("positive"), "{e}");
}

// ---------------------------------------------------------------- Resize override

#[test]
fn second_resize_needs_override() {
    let two = |override_: &str| {
        let cfg = config(&format!(
            "p = [\n {{ type = \"Resize\", img_scale = [1333, 400], keep_ratio = true }},\n {{ type = \"Resize\", img_scale = [1333, 800], keep_ratio = true{override_} }},\n]\n"
        ));
        build_pipeline(&cfg.node("p").unwrap()).unwrap()
    };
    let sample = || det_sample(1000, 500, &[[100.0, 100.0, 300.0, 200.0]], &[1]);
    let e = two("").apply(sample(), &mut rng(0)).unwrap_err();
    assert!(matches!(
        e,
        DataError::Transform {
            transform: "Resize",
            ..
        }
    ));
    let msg = e.to_string();
    assert!(
        msg.contains("mem/coco.jpg")
            && msg.contains("scale and scale_factor cannot be both set")
            && msg.contains("override = true"),
        "{msg}"
    );

    // 1000x500 -> 800x400 -> 1333x667 (long side limits); scale_factor is the last resize's.
    let out = two(", override = true")
        .apply(sample(), &mut rng(0))
        .unwrap();
    assert_eq!(out.img_shape, [667, 1333, 3]);
    let f = out.scale_factor.unwrap();
    assert!(
        (f[0] - 1333.0 / 800.0).abs() < 1e-6 && (f[1] - 667.0 / 400.0).abs() < 1e-6,
        "{f:?}"
    );
    // Boxes follow both resizes: 100 * 0.8 * 1333 / 800.
    assert!(
        (out.gt_bboxes[0][0] - 133.3).abs() < 1e-3,
        "{:?}",
        out.gt_bboxes
    );

    // One Resize with override alone is fine (nothing to override), and mmcls sizes refuse it.
    let one = transform("{ type = \"Resize\", img_scale = [1333, 800], override = true }");
    assert_eq!(
        one.apply(sample(), &mut rng(0)).unwrap().img_shape,
        [667, 1333, 3]
    );
    let e = build_err("{ type = \"Resize\", size = [256, -1], override = true }");
    assert!(e.contains("t.override"), "{e}");
}

// ---------------------------------------------------------------- real samples

const MASK_DEMO: &str = "../data/mask-demo";

/// The polygon-annotated tiles of `data/mask-demo` (real nuclei, COCO layout) as samples before
/// `LoadImageFromFile`, boxes `[x, y, x + w, y + h]` as mmdet 2.x's `CocoDataset` reads them.
fn mask_demo_polygon_samples() -> Vec<Results> {
    let text =
        std::fs::read_to_string(format!("{MASK_DEMO}/annotations/instances_train.json")).unwrap();
    let coco: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for img in coco["images"].as_array().unwrap() {
        let id = img["id"].as_u64().unwrap();
        let anns: Vec<&serde_json::Value> = coco["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["image_id"].as_u64() == Some(id))
            .collect();
        if !anns.iter().all(|a| a["segmentation"].is_array()) {
            continue; // RLE tiles: decoding compressed counts is the dataset reader's job
        }
        let file = img["file_name"].as_str().unwrap();
        let mut r = Results::new(format!("{MASK_DEMO}/images/{file}"));
        let mut instances = Vec::new();
        for a in anns {
            let b: Vec<f32> = a["bbox"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            r.gt_bboxes.push([b[0], b[1], b[0] + b[2], b[1] + b[3]]);
            r.gt_labels
                .push(a["category_id"].as_u64().unwrap() as usize - 1);
            let parts = serde_json::from_value(a["segmentation"].clone()).unwrap();
            instances.push(Some(MaskAnnotation::Polygons(parts)));
        }
        r.gt_mask_anns = Some(MaskAnnotations {
            height: img["height"].as_u64().unwrap() as usize,
            width: img["width"].as_u64().unwrap() as usize,
            instances,
        });
        out.push(r);
    }
    out
}

#[test]
fn coco_mona_train_pipeline_runs_on_real_samples() {
    let cfg = Config::from_file(COCO_MONA).unwrap();
    let pipeline = build_pipeline(&cfg.node("data.train.pipeline").unwrap()).unwrap();
    let samples = mask_demo_polygon_samples();
    assert_eq!(samples.len(), 6);
    let (mut square, mut cropped, mut kept) = (0, 0, 0);
    for (i, s) in samples.iter().enumerate() {
        for seed in 0..4 {
            let r = pipeline
                .apply(s.clone(), &mut rng(seed * 10 + i as u64))
                .unwrap();
            let [h, w, _] = r.img_shape;
            // 128 x 128 tiles: policy a gives s x s; policy b a crop of 384..600 px per side
            // rescaled to short side s (its long side stays below 1333).
            assert!(SHORTS.contains(&w.min(h)) && w.max(h) <= 1333, "{w}x{h}");
            if w == h {
                square += 1;
            } else {
                cropped += 1;
            }
            let [ph, pw, _] = r.pad_shape.unwrap();
            assert_eq!((ph % 32, pw % 32), (0, 0));
            assert!(ph >= h && pw >= w);
            let m = masks(&r);
            assert_eq!(
                (m.len(), r.gt_labels.len()),
                (r.gt_bboxes.len(), r.gt_bboxes.len())
            );
            assert!(r.gt_labels.iter().all(|&l| l == 0));
            kept += r.gt_bboxes.len();
            for (b, mask) in r.gt_bboxes.iter().zip(m) {
                assert!(b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= w as f32 && b[3] <= h as f32);
                assert_eq!((mask.width() as usize, mask.height() as usize), (pw, ph));
                // Each mask lies in its box, up to nearest-neighbour rounding of two resizes.
                let mb = mask_bbox(mask);
                if mb != [0.0; 4] {
                    let tol = 3.5;
                    assert!(
                        mb[0] >= b[0] - tol
                            && mb[1] >= b[1] - tol
                            && mb[2] <= b[2] + tol
                            && mb[3] <= b[3] + tol,
                        "mask {mb:?} outside box {b:?}"
                    );
                }
            }
        }
    }
    assert!(square > 0 && cropped > 0, "{square} / {cropped}");
    assert!(kept > 0);
}
