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
