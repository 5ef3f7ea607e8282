//! `MultiScaleFlipAug` as test-time augmentation views: the config's `img_ratios` and `flip`,
//! mmseg's `--aug-test` override, and a plain view for a dataset's own pipeline.

use mona_core::config::Config;
use mona_data::transforms::{
    AUG_TEST_RATIOS, TtaMode, TtaView, build_flat_pipeline, build_tta_views,
};
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
fn view_shapes(views: &[TtaView]) -> Vec<(usize, usize, bool)> {
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

fn shapes(mode: TtaMode) -> Vec<(usize, usize, bool)> {
    let cfg = Config::from_str_at(PIPELINE, "tta.toml").unwrap();
    view_shapes(&build_tta_views(&cfg.node("pipeline").unwrap(), mode).unwrap())
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

/// `pipeline` with one `MultiScaleFlipAug` holding `msfa` (its keys other than `transforms`).
fn msfa_pipeline(msfa: &str) -> Config {
    let text = format!(
        r#"pipeline = [
    {{ type = "LoadImageFromFile" }},
    {{ type = "MultiScaleFlipAug", {msfa}, transforms = [
        {{ type = "Resize", keep_ratio = false }},
        {{ type = "RandomFlip" }},
        {{ type = "ImageToTensor", keys = ["img"] }},
        {{ type = "Collect", keys = ["img"] }},
    ] }},
]"#
    );
    Config::from_str_at(&text, "tta.toml").unwrap()
}

fn view_error(msfa: &str, mode: TtaMode) -> String {
    let cfg = msfa_pipeline(msfa);
    match build_tta_views(&cfg.node("pipeline").unwrap(), mode) {
        Ok(_) => panic!("{msfa} was accepted"),
        Err(e) => e.to_string(),
    }
}

fn flat_error(msfa: &str) -> String {
    let cfg = msfa_pipeline(msfa);
    match build_flat_pipeline(&cfg.node("pipeline").unwrap()) {
        Ok(_) => panic!("{msfa} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn mmdet_lists_of_scales_are_views_and_flip_mode_flips_each() {
    let cfg = msfa_pipeline("img_scale = [[48, 24], [64, 32]], flip = false");
    let node = cfg.node("pipeline").unwrap();
    let shapes = |mode| view_shapes(&build_tta_views(&node, mode).unwrap());
    assert_eq!(shapes(TtaMode::Config), [(48, 24, false), (64, 32, false)]);
    assert_eq!(
        shapes(TtaMode::Flip),
        [
            (48, 24, false),
            (48, 24, true),
            (64, 32, false),
            (64, 32, true)
        ]
    );
    assert_eq!(shapes(TtaMode::Plain), [(48, 24, false)]);
}

#[test]
fn what_the_views_cannot_do_is_refused_with_its_key() {
    let e = view_error(
        "img_scale = [64, 32], scale_factor = [0.5, 1.0]",
        TtaMode::Config,
    );
    assert!(e.contains("scale_factor"), "{e}");
    assert!(
        e.contains("resizing by factors of the original size is not supported"),
        "{e}"
    );
    let e = view_error(
        r#"img_scale = [64, 32], flip = true, flip_direction = ["horizontal", "vertical"]"#,
        TtaMode::Config,
    );
    assert!(e.contains("flip_direction"), "{e}");
    assert!(
        e.contains(r#"only horizontal flip is supported, not "vertical""#),
        "{e}"
    );
    let e = view_error(
        "img_scale = [[64, 32], [32, 16]], img_ratios = [0.5, 1.0]",
        TtaMode::Config,
    );
    assert!(e.contains("img_ratios needs a single img_scale"), "{e}");
}

/// Classification builds its test pipeline flat: a config asking for test-time augmentation
/// is refused, naming the key, rather than run at one scale.
#[test]
fn a_flat_pipeline_refuses_ratios_scales_and_flip() {
    for (msfa, key) in [
        (
            "img_scale = [64, 32], img_ratios = [0.5, 1.0]",
            "img_ratios",
        ),
        ("img_scale = [[64, 32], [32, 16]]", "img_scale"),
    ] {
        let e = flat_error(msfa);
        assert!(e.contains(key), "{e}");
        assert!(
            e.contains("multi-scale test-time augmentation is not supported for this task"),
            "{e}"
        );
    }
    let e = flat_error("img_scale = [64, 32], flip = true");
    assert!(e.contains("flip"), "{e}");
    assert!(
        e.contains("flip test-time augmentation is not supported for this task"),
        "{e}"
    );
    // one ratio of 1 is one scale: accepted
    let cfg = msfa_pipeline("img_scale = [64, 32], img_ratios = [1.0]");
    assert!(build_flat_pipeline(&cfg.node("pipeline").unwrap()).is_ok());
}
