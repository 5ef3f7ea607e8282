//! `MultiScaleFlipAug` as test-time augmentation views: the config's `img_ratios` and `flip`,
//! mmseg's `--aug-test` override, and a plain view for a dataset's own pipeline.

use mona_core::config::Config;
use mona_data::transforms::{AUG_TEST_RATIOS, TtaMode, build_tta_views};
use mona_data::{Image, Results, sample_rng};

const PIPELINE: &str = r#"
pipeline = [
    { type = "LoadImageFromFile" },
    { type = "MultiScaleFlipAug", img_scale = [64, 32], img_ratios = [0.5, 1.0], flip = true, transforms = [
        { type = "Resize", keep_ratio = false },
        { type = "RandomFlip" },
        { type = "ImageToTensor", keys = ["img"] },
        { type = "Collect", keys = ["img"] },
    ] },
]
"#;

fn image_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/seg-demo/images/validation/000.jpg")
}

/// (width, height, flipped) of each view's output for the demo image.
fn shapes(mode: TtaMode) -> Vec<(usize, usize, bool)> {
    let cfg = Config::from_str_at(PIPELINE, "tta.toml").unwrap();
    let views = build_tta_views(&cfg.node("pipeline").unwrap(), mode).unwrap();
    views
        .iter()
        .map(|v| {
            let r = v
                .pipeline
                .apply(Results::new(image_path()), &mut sample_rng(0, 0, 0))
                .unwrap();
            assert!(matches!(r.img, Image::U8 { .. } | Image::F32 { .. }));
            assert_eq!(r.flip, v.flip, "the view's flag is what its pipeline did");
            (r.img_shape[1], r.img_shape[0], v.flip)
        })
        .collect()
}

#[test]
fn the_configs_ratios_and_flip_each_scale_then_flipped() {
    assert_eq!(
        shapes(TtaMode::Config),
        [
            (32, 16, false),
            (32, 16, true),
            (64, 32, false),
            (64, 32, true)
        ]
    );
    assert_eq!(shapes(TtaMode::Plain), [(64, 32, false)]);
    let aug = shapes(TtaMode::AugTest);
    assert_eq!(aug.len(), 2 * AUG_TEST_RATIOS.len());
    assert_eq!(&aug[..2], [(32, 16, false), (32, 16, true)]);
    assert_eq!(aug[11], (112, 56, true));
}

#[test]
fn a_flipped_view_mirrors_the_image() {
    let cfg = Config::from_str_at(PIPELINE, "tta.toml").unwrap();
    let views = build_tta_views(&cfg.node("pipeline").unwrap(), TtaMode::Config).unwrap();
    let load = |i: usize| {
        views[i]
            .pipeline
            .apply(Results::new(image_path()), &mut sample_rng(0, 0, 0))
            .unwrap()
    };
    let (plain, flipped) = (load(2), load(3));
    let image = |r: &Results| match &r.img {
        Image::U8(img) => img.clone(),
        other => panic!("{}", other.describe()),
    };
    let (a, b) = (image(&plain), image(&flipped));
    assert_eq!(a.dimensions(), b.dimensions());
    let w = a.width();
    for (x, y, p) in a.enumerate_pixels() {
        assert_eq!(p, b.get_pixel(w - 1 - x, y), "({x}, {y})");
    }
}
