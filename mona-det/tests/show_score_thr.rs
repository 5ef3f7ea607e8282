//! `test --show-dir` draws only the boxes scoring at least `--show-score-thr`.

use image::{Rgb, RgbImage};
use mona_det::retina::Detections;
use mona_det::visualize::draw_detections;

const GRAY: Rgb<u8> = Rgb([128, 128, 128]);

/// The drawn picture of two boxes (scores 0.2 and 0.8) at threshold `thr`: whether the
/// left edge of each box was drawn.
fn drawn_edges(thr: f32) -> (bool, bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("plain.png");
    RgbImage::from_pixel(64, 64, GRAY).save(&src).unwrap();
    let dets = Detections {
        bboxes: vec![[4.0, 30.0, 20.0, 50.0], [36.0, 30.0, 56.0, 50.0]],
        scores: vec![0.2, 0.8],
        labels: vec![0, 0],
        masks: Vec::new(),
    };
    let out = draw_detections(
        &dir.path().join("show"),
        &src,
        "plain.png",
        &dets,
        &["tree".to_string()],
        thr,
    )
    .unwrap();
    let img = image::open(out).unwrap().to_rgb8();
    (
        *img.get_pixel(4, 45) != GRAY,
        *img.get_pixel(36, 45) != GRAY,
    )
}

#[test]
fn boxes_below_the_threshold_are_not_drawn() {
    assert_eq!(drawn_edges(0.3), (false, true));
    assert_eq!(drawn_edges(0.1), (true, true));
    assert_eq!(drawn_edges(0.9), (false, false));
}
