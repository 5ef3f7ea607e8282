//! Each transform with known answers, built from config text as users write it.

mod common;

use common::{config, pattern, rng, write_png};
use image::{GrayImage, Luma, Rgb, RgbImage};
use mona_data::results::FlipDirection;
use mona_data::transforms::{CropBox, sample_crop_box};
use mona_data::{Image, Results, Transform, build_pipeline, build_transform};

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

fn sample(img: RgbImage) -> Results {
    let mut r = Results::new("mem/sample.png");
    r.img = Image::U8(img);
    r.ori_shape = r.img.shape();
    r.img_shape = r.ori_shape;
    r
}

fn u8_img(r: &Results) -> &RgbImage {
    match &r.img {
        Image::U8(img) => img,
        other => panic!("expected an 8-bit image, found {other:?}"),
    }
}

fn patterned(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb(pattern(x, y)))
}

#[test]
fn load_image_from_file_sets_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_png(dir.path(), "a.png", 7, 5, pattern);
    let r = transform("{ type = \"LoadImageFromFile\" }")
        .apply(Results::new(&path), &mut rng(0))
        .unwrap();
    assert_eq!(r.ori_shape, [5, 7, 3]);
    assert_eq!(r.img_shape, [5, 7, 3]);
    assert_eq!(u8_img(&r).get_pixel(3, 2).0, pattern(3, 2));
    assert!(
        build_err("{ type = \"LoadImageFromFile\", to_float32 = true }").contains("to_float32")
    );
}

#[test]
fn random_resized_crop_outputs_size_and_is_reproducible() {
    let t = transform("{ type = \"RandomResizedCrop\", size = 224 }");
    let input = sample(patterned(300, 200));
    let a = t.apply(input.clone(), &mut rng(7)).unwrap();
    let b = t.apply(input.clone(), &mut rng(7)).unwrap();
    assert_eq!(a.img_shape, [224, 224, 3]);
    assert_eq!(u8_img(&a).dimensions(), (224, 224));
    assert_eq!(a.img, b.img, "same seed, same crop");
    let differ = (0..8).any(|s| t.apply(input.clone(), &mut rng(100 + s)).unwrap().img != a.img);
    assert!(differ, "different seeds should give different crops");

    let t = transform("{ type = \"RandomResizedCrop\", size = [32, 48], backend = \"pillow\" }");
    let r = t.apply(input, &mut rng(1)).unwrap();
    assert_eq!(r.img_shape, [32, 48, 3]);
}

#[test]
fn random_resized_crop_sampling_is_pinned_by_seed() {
    let draw = |seed| {
        sample_crop_box(
            200,
            300,
            (0.08, 1.0),
            (3.0 / 4.0, 4.0 / 3.0),
            10,
            &mut rng(seed),
        )
    };
    let a = draw(42);
    assert_eq!(a, draw(42));
    // The window obeys mmcls's constraints (up to rounding of the sides).
    assert!(a.top + a.height <= 200 && a.left + a.width <= 300);
    let area = (a.width * a.height) as f64 / 60000.0;
    assert!((0.07..=1.0).contains(&area), "{a:?}");
    let ratio = a.width as f64 / a.height as f64;
    assert!((0.7..=1.4).contains(&ratio), "{a:?}");
    assert_eq!(a, PINNED_42, "the stream of ChaCha8 seeded with 42 changed");
}

/// `sample_crop_box(200, 300, default scale/ratio, 10 attempts)` with `rng(42)`.
const PINNED_42: CropBox = CropBox {
    top: 15,
    left: 28,
    height: 181,
    width: 235,
};

#[test]
fn random_resized_crop_fallback_is_the_ratio_clamped_centre() {
    // A 1000x10 strip: no 0.9..1.0-area window with aspect <= 4/3 fits, so every attempt
    // fails and mmcls takes the centre 13x10 window (round(10 * 4/3) = 13).
    let b = sample_crop_box(
        10,
        1000,
        (0.9, 1.0),
        (3.0 / 4.0, 4.0 / 3.0),
        10,
        &mut rng(0),
    );
    assert_eq!(
        b,
        CropBox {
            top: 0,
            left: 493,
            height: 10,
            width: 13
        }
    );
    // A tall strip: width kept, height = round(10 / (3/4)) = 13.
    let b = sample_crop_box(
        1000,
        10,
        (0.9, 1.0),
        (3.0 / 4.0, 4.0 / 3.0),
        10,
        &mut rng(0),
    );
    assert_eq!(
        b,
        CropBox {
            top: 493,
            left: 0,
            height: 13,
            width: 10
        }
    );
    // Zero attempts: straight to the fallback; a square image is kept whole.
    let b = sample_crop_box(50, 50, (0.08, 1.0), (3.0 / 4.0, 4.0 / 3.0), 0, &mut rng(0));
    assert_eq!(
        b,
        CropBox {
            top: 0,
            left: 0,
            height: 50,
            width: 50
        }
    );
}

#[test]
fn random_resized_crop_of_the_whole_image_is_identity() {
    let t = transform(
        "{ type = \"RandomResizedCrop\", size = 24, scale = [1.0, 1.0], ratio = [1.0, 1.0] }",
    );
    let img = patterned(24, 24);
    let r = t.apply(sample(img.clone()), &mut rng(3)).unwrap();
    assert_eq!(u8_img(&r), &img);
}

#[test]
fn random_resized_crop_rejects_bad_arguments() {
    assert!(
        build_err("{ type = \"RandomResizedCrop\", size = 224, scale = [1.0, 0.5] }")
            .contains("t.scale")
    );
    assert!(
        build_err("{ type = \"RandomResizedCrop\", size = 224, interpolation = \"bicubic\" }")
            .contains("bicubic")
    );
    assert!(build_err("{ type = \"RandomResizedCrop\", size = [1, 2, 3] }").contains("t.size"));
    assert!(build_err("{ type = \"RandomResizedCrop\", size = 0 }").contains("positive"));
    assert!(build_err("{ type = \"RandomResizedCrop\", size = 224, sise = 3 }").contains("sise"));
}

#[test]
fn flip_reverses_columns_and_flips_gt_seg_and_boxes() {
    let t = transform("{ type = \"RandomFlip\", flip_prob = 1.0, direction = \"horizontal\" }");
    let img = patterned(5, 3);
    let mut r = sample(img.clone());
    r.gt_seg = Some(GrayImage::from_fn(5, 3, |x, y| Luma([(x + 10 * y) as u8])));
    r.gt_bboxes = vec![[1.0, 0.0, 2.0, 3.0]];
    let out = t.apply(r, &mut rng(0)).unwrap();
    for (x, y, p) in u8_img(&out).enumerate_pixels() {
        assert_eq!(p.0, img.get_pixel(4 - x, y).0);
    }
    let seg = out.gt_seg.as_ref().unwrap();
    assert_eq!(seg.get_pixel(0, 2).0, [4 + 20]);
    assert_eq!(out.gt_bboxes, vec![[3.0, 0.0, 4.0, 3.0]]);
    assert!(out.flip);
    assert_eq!(out.flip_direction, Some(FlipDirection::Horizontal));

    let t = transform("{ type = \"RandomFlip\", flip_prob = 1.0, direction = \"vertical\" }");
    let out = t.apply(sample(img.clone()), &mut rng(0)).unwrap();
    assert_eq!(u8_img(&out).get_pixel(1, 0).0, img.get_pixel(1, 2).0);

    let never = transform("{ type = \"RandomFlip\", flip_prob = 0.0 }");
    let out = never.apply(sample(img.clone()), &mut rng(0)).unwrap();
    assert_eq!(u8_img(&out), &img);
    assert!(!out.flip);

    let half = transform("{ type = \"RandomFlip\", flip_prob = 0.5 }");
    let flips = (0..200)
        .filter(|&s| half.apply(sample(img.clone()), &mut rng(s)).unwrap().flip)
        .count();
    assert!((60..140).contains(&flips), "{flips}");
    assert!(build_err("{ type = \"RandomFlip\", direction = \"diagonal\" }").contains("diagonal"));
}

#[test]
fn flip_works_after_normalize() {
    let pipeline = config(
        "p = [{ type = \"Normalize\", mean = [0, 0, 0], std = [1, 1, 1] }, \
              { type = \"RandomFlip\", flip_prob = 1.0 }]",
    );
    let p = build_pipeline(&pipeline.node("p").unwrap()).unwrap();
    let out = p.apply(sample(patterned(3, 1)), &mut rng(0)).unwrap();
    let Image::F32 { data, .. } = &out.img else {
        panic!()
    };
    // red plane: x * 7 reversed
    assert_eq!(&data[0..3], &[14.0, 7.0, 0.0]);
}

#[test]
fn resize_short_side_keeps_ratio() {
    let t = transform("{ type = \"Resize\", size = [256, -1] }");
    let mut r = sample(patterned(300, 200));
    r.gt_seg = Some(GrayImage::from_fn(300, 200, |x, _| Luma([(x / 100) as u8])));
    let out = t.apply(r, &mut rng(0)).unwrap();
    assert_eq!(u8_img(&out).dimensions(), (384, 256));
    assert_eq!(out.img_shape, [256, 384, 3]);
    assert_eq!(out.ori_shape, [200, 300, 3]);
    let seg = out.gt_seg.as_ref().unwrap();
    assert_eq!(seg.dimensions(), (384, 256));
    // nearest: values stay labels; column 383 maps to source floor(383 * 300/384) = 299
    assert!(seg.pixels().all(|p| p.0[0] <= 2));
    assert_eq!(seg.get_pixel(383, 0).0, [2]);

    // Portrait, and an image whose short side is already 256 (left alone).
    let out = t.apply(sample(patterned(200, 300)), &mut rng(0)).unwrap();
    assert_eq!(out.img_shape, [384, 256, 3]);
    let img = patterned(256, 300);
    let out = t.apply(sample(img.clone()), &mut rng(0)).unwrap();
    assert_eq!(u8_img(&out), &img);
}

#[test]
fn resize_exact_and_int_sizes() {
    let out = transform("{ type = \"Resize\", size = [10, 20] }")
        .apply(sample(patterned(7, 7)), &mut rng(0))
        .unwrap();
    assert_eq!(out.img_shape, [10, 20, 3]);
    // mmcls 0.x: an int is a square, not a short side.
    let out = transform("{ type = \"Resize\", size = 16 }")
        .apply(sample(patterned(30, 20)), &mut rng(0))
        .unwrap();
    assert_eq!(out.img_shape, [16, 16, 3]);
    let out = transform("{ type = \"Resize\", size = [16, -1], adaptive_side = \"long\" }")
        .apply(sample(patterned(30, 20)), &mut rng(0))
        .unwrap();
    assert_eq!(out.img_shape, [10, 16, 3]);
}

#[test]
fn resize_bilinear_uses_half_pixel_centres() {
    // A horizontal ramp 0, 100 widened to 4 columns: OpenCV gives 0, 25, 75, 100.
    let img = RgbImage::from_fn(2, 1, |x, _| Rgb([x as u8 * 100; 3]));
    let out = transform("{ type = \"Resize\", size = [1, 4] }")
        .apply(sample(img), &mut rng(0))
        .unwrap();
    let row: Vec<u8> = u8_img(&out).pixels().map(|p| p.0[0]).collect();
    assert_eq!(row, vec![0, 25, 75, 100]);
    // Exact halving averages 2x2 blocks.
    let img = RgbImage::from_fn(4, 2, |x, y| Rgb([(x + 4 * y) as u8 * 10; 3]));
    let out = transform("{ type = \"Resize\", size = [1, 2] }")
        .apply(sample(img), &mut rng(0))
        .unwrap();
    let row: Vec<u8> = u8_img(&out).pixels().map(|p| p.0[0]).collect();
    assert_eq!(row, vec![25, 45]);
}

#[test]
fn center_crop_picks_the_centre() {
    let t = transform("{ type = \"CenterCrop\", crop_size = 3 }");
    let img = patterned(7, 5);
    let mut r = sample(img.clone());
    r.gt_seg = Some(GrayImage::from_fn(7, 5, |x, y| Luma([(x + 10 * y) as u8])));
    let out = t.apply(r, &mut rng(0)).unwrap();
    assert_eq!(out.img_shape, [3, 3, 3]);
    // x1 = round((7 - 3) / 2) = 2, y1 = round((5 - 3) / 2) = 1
    for (x, y, p) in u8_img(&out).enumerate_pixels() {
        assert_eq!(p.0, img.get_pixel(x + 2, y + 1).0);
    }
    assert_eq!(out.gt_seg.as_ref().unwrap().get_pixel(0, 0).0, [2 + 10]);

    // Python rounds halves to even: (6 - 3) / 2 = 1.5 -> 2; (8 - 3) / 2 = 2.5 -> 2.
    let out = t.apply(sample(patterned(6, 8)), &mut rng(0)).unwrap();
    assert_eq!(u8_img(&out).get_pixel(0, 0).0, pattern(2, 2));
    // [h, w] form, and an image smaller than the crop is kept whole.
    let out = transform("{ type = \"CenterCrop\", crop_size = [2, 4] }")
        .apply(sample(patterned(3, 9)), &mut rng(0))
        .unwrap();
    assert_eq!(out.img_shape, [2, 3, 3]);
    assert_eq!(u8_img(&out).get_pixel(0, 0).0, pattern(0, 4)); // round((9 - 2) / 2) = round(3.5) = 4
}

#[test]
fn normalize_known_pixel_and_layout() {
    let t = transform(
        "{ type = \"Normalize\", mean = [123.675, 116.28, 103.53], std = [58.395, 57.12, 57.375], to_rgb = true }",
    );
    let img = RgbImage::from_fn(2, 1, |x, _| {
        if x == 0 {
            Rgb([255, 0, 128])
        } else {
            Rgb([0, 0, 0])
        }
    });
    let out = t.apply(sample(img.clone()), &mut rng(0)).unwrap();
    let Image::F32 {
        data,
        channels,
        height,
        width,
    } = &out.img
    else {
        panic!("{:?}", out.img)
    };
    assert_eq!((*channels, *height, *width), (3, 1, 2));
    let expect = [
        (255.0 - 123.675) / 58.395,
        (0.0 - 116.28) / 57.12,
        (128.0 - 103.53) / 57.375,
    ];
    // planar: data[c * 2 + x]
    for c in 0..3 {
        assert!(
            (f64::from(data[c * 2]) - expect[c]).abs() < 1e-5,
            "{c}: {} vs {}",
            data[c * 2],
            expect[c]
        );
    }
    assert!((f64::from(data[1]) - (-123.675 / 58.395)).abs() < 1e-5);
    assert!((data[0] - 2.248_908_6).abs() < 1e-5);

    // to_rgb = false reproduces mmcv's BGR planes.
    let t =
        transform("{ type = \"Normalize\", mean = [1, 2, 3], std = [1, 1, 1], to_rgb = false }");
    let out = t.apply(sample(img), &mut rng(0)).unwrap();
    let Image::F32 { data, .. } = &out.img else {
        panic!()
    };
    assert_eq!([data[0], data[2], data[4]], [127.0, -2.0, 252.0]);

    assert!(
        build_err("{ type = \"Normalize\", mean = [1, 2], std = [1, 1, 1] }").contains("t.mean")
    );
    let err = transform("{ type = \"Normalize\", mean = [0, 0, 0], std = [1, 1, 1] }")
        .apply(out, &mut rng(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mem/sample.png") && err.contains("Normalize"),
        "{err}"
    );
}

#[test]
fn formatting_steps_check_their_keys() {
    let collect = transform("{ type = \"Collect\", keys = [\"img\", \"gt_label\"] }");
    let mut r = sample(patterned(2, 2));
    assert!(
        collect
            .apply(r.clone(), &mut rng(0))
            .unwrap_err()
            .to_string()
            .contains("gt_label")
    );
    r.gt_label = Some(3);
    assert_eq!(collect.apply(r.clone(), &mut rng(0)).unwrap(), r);
    let to_tensor = transform("{ type = \"ImageToTensor\", keys = [\"img\"] }");
    let err = to_tensor
        .apply(Results::new("x.png"), &mut rng(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x.png") && err.contains("ImageToTensor"),
        "{err}"
    );
    assert!(build_err("{ type = \"ToTensor\", keys = [\"gt_lable\"] }").contains("gt_lable"));
    transform(
        "{ type = \"Collect\", keys = [\"img\"], meta_keys = [\"filename\", \"ori_shape\"] }",
    );
}

#[test]
fn unknown_pipeline_type_names_file_key_and_close_names() {
    let cfg = config(
        "[data.train]\npipeline = [\n  { type = \"LoadImageFromFile\" },\n  { type = \"RandomResizedCrop\", size = 224 },\n  { type = \"RandomFlp\", flip_prob = 0.5 },\n]\n",
    );
    let err = build_pipeline(&cfg.node("data.train.pipeline").unwrap())
        .err()
        .unwrap()
        .to_string();
    for needle in [
        "configs/test.toml",
        "data.train.pipeline.2.type",
        "unknown transform type \"RandomFlp\"",
        "RandomFlip",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
    let cfg = config("[data.train]\npipeline = { type = \"LoadImageFromFile\" }\n");
    let err = build_pipeline(&cfg.node("data.train.pipeline").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("expected a list of transforms"), "{err}");
}

#[test]
fn official_classification_configs_build_unchanged() {
    for file in [
        "../configs/mona/swin-l_oxford-flower/swin-large_4xb8_oxford_flower_mona.toml",
        "../configs/mona/swin-l_oxford-pet/swin-large_4xb8_oxford_pet_mona.toml",
        "../configs/mona/swin-l_voc/swin-large_4xb8_voc_mona.toml",
    ] {
        let Ok(cfg) = mona_core::config::Config::from_file(file) else {
            panic!("cannot load {file}");
        };
        for split in ["train", "val", "test"] {
            let p = build_pipeline(&cfg.node(&format!("data.{split}.pipeline")).unwrap()).unwrap();
            assert!(p.names().contains(&"Normalize"), "{file} {split}: {p:?}");
        }
        let train = build_pipeline(&cfg.node("data.train.pipeline").unwrap()).unwrap();
        assert_eq!(
            train.names(),
            [
                "LoadImageFromFile",
                "RandomResizedCrop",
                "RandomFlip",
                "Normalize",
                "ImageToTensor",
                "ToTensor",
                "Collect"
            ]
        );
    }
}

#[test]
fn test_pipeline_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_png(dir.path(), "a.png", 300, 200, pattern);
    let cfg = config(
        "p = [\n { type = \"LoadImageFromFile\" },\n { type = \"Resize\", size = [256, -1] },\n { type = \"CenterCrop\", crop_size = 224 },\n { type = \"Normalize\", mean = [123.675, 116.28, 103.53], std = [58.395, 57.12, 57.375], to_rgb = true },\n { type = \"ImageToTensor\", keys = [\"img\"] },\n { type = \"Collect\", keys = [\"img\"] },\n]\n",
    );
    let p = build_pipeline(&cfg.node("p").unwrap()).unwrap();
    let out = p.apply(Results::new(path), &mut rng(0)).unwrap();
    assert!(matches!(
        out.img,
        Image::F32 {
            channels: 3,
            height: 224,
            width: 224,
            ..
        }
    ));
    assert_eq!(out.img_shape, [224, 224, 3]);
}
