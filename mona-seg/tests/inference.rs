//! `whole` and `slide` inference of `EncoderDecoder` (the demo's small model).

use burn::tensor::{Device, Distribution, Tensor};
use mona_core::config::Config;
use mona_fixtures::rel_err;
use mona_seg::{EncoderDecoder, TestCfg};

fn model() -> EncoderDecoder {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs/demo/seg_demo_swin_mona_upernet.toml");
    let cfg = Config::from_file(&path).unwrap();
    let device = Device::flex();
    device.seed(3);
    EncoderDecoder::from_config(&cfg.node("model").unwrap(), &device).unwrap()
}

#[test]
fn slide_with_one_window_equals_whole() {
    let m = model();
    let x = Tensor::<4>::random(
        [1, 3, 64, 64],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let whole = m.inference(x.clone());
    assert_eq!(whole.dims(), [1, 4, 64, 64]);
    let slide = m.slide_inference(x, [64, 64], [32, 32]);
    assert!(rel_err(&slide.to_data(), &whole.to_data()) < 1e-5);
}

#[test]
fn slide_averages_overlapping_windows() {
    let mut m = model();
    m.set_test_cfg(TestCfg {
        mode: "slide".into(),
        crop_size: Some([32, 32]),
        stride: Some([24, 24]),
    });
    let x = Tensor::<4>::random(
        [1, 3, 40, 56],
        Distribution::Normal(0.0, 1.0),
        &Device::flex(),
    );
    let y = m.inference(x.clone());
    assert_eq!(y.dims(), [1, 4, 40, 56]);
    // Rows 0..8 and columns 0..24 are covered by the first window only.
    let first = m.encode_decode(x.slice([0..1, 0..3, 0..32, 0..32]));
    let a = y.slice([0..1, 0..4, 0..8, 0..24]).to_data();
    let b = first.slice([0..1, 0..4, 0..8, 0..24]).to_data();
    assert!(rel_err(&a, &b) < 1e-5);
}

/// Flip test-time augmentation on a horizontally symmetric image: the flipped view sees the
/// same pixels, so once flipped back its probabilities are the plain view's mirrored, and the
/// merged label map is itself symmetric. A missing or doubled flip-back breaks both.
#[test]
fn flip_tta_of_a_symmetric_image_flips_back_and_is_symmetric() {
    use mona_data::transforms::{TtaMode, build_tta_views};
    use mona_data::{Results, sample_rng};
    use mona_seg::tta::view_probabilities;

    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let src = image::open(root.join("data/seg-demo/images/validation/000.jpg"))
        .unwrap()
        .to_rgb8();
    let (w, h) = src.dimensions();
    let sym = image::RgbImage::from_fn(w, h, |x, y| *src.get_pixel(x.min(w - 1 - x), y));
    let path = dir.path().join("sym.png");
    sym.save(&path).unwrap();

    let mut cfg =
        Config::from_file(root.join("configs/demo/seg_demo_swin_mona_upernet.toml")).unwrap();
    cfg.apply_options(&["data.test.pipeline.1.flip=true".to_string()])
        .unwrap();
    let views = build_tta_views(&cfg.node("data.test.pipeline").unwrap(), TtaMode::Config).unwrap();
    assert_eq!(
        views.iter().map(|v| v.flip).collect::<Vec<_>>(),
        [false, true]
    );

    let m = model();
    let device = Device::flex();
    let probs = |i: usize| {
        let r = views[i]
            .pipeline
            .apply(Results::new(&path), &mut sample_rng(0, 0, 0))
            .unwrap();
        view_probabilities(&m, &r, views[i].flip, &device).unwrap()
    };
    let (plain, flipped) = (probs(0), probs(1));
    let err = rel_err(&flipped.to_data(), &plain.clone().flip([3]).to_data());
    assert!(
        err < 1e-6,
        "flipped-back view vs mirrored plain view: {err}"
    );
    let merged = (plain + flipped) / 2.0;
    let labels: Vec<i64> = merged
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_into_vec()
        .unwrap();
    let (h, w) = (h as usize, w as usize);
    for y in 0..h {
        for x in 0..w {
            assert_eq!(labels[y * w + x], labels[y * w + (w - 1 - x)], "({x}, {y})");
        }
    }
}
