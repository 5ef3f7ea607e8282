//! Detection's test-time augmentation through whole detectors (RetinaNet, Cascade Mask
//! R-CNN): a view seen twice merges to that view's own detections, and a flipped view of an
//! image gives the plain view of the mirrored image, its boxes mapped back across the view's
//! width. Untrained models (seed 0) with a low score threshold, so that there are many boxes.

mod common;

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mona_core::config::Config;
use mona_data::transforms::{TtaMode, TtaView, build_tta_views};
use mona_data::{Results, sample_rng};
use mona_det::batch::collate;
use mona_det::detector::Detector;
use mona_det::retina::Detections;
use mona_det::tta::{AugView, predict_sample};
use mona_det::{CascadeRcnn, RetinaNet};

use common::root;

/// A test pipeline at the image's own size (scale factor 1), plain and flipped.
fn views(size: usize) -> Vec<TtaView> {
    let text = format!(
        r#"pipeline = [
    {{ type = "LoadImageFromFile" }},
    {{ type = "MultiScaleFlipAug", img_scale = [{size}, {size}], flip = true, transforms = [
        {{ type = "Resize", keep_ratio = true }},
        {{ type = "RandomFlip" }},
        {{ type = "Normalize", mean = [123.675, 116.28, 103.53], std = [58.395, 57.12, 57.375], to_rgb = true }},
        {{ type = "Pad", size_divisor = 32 }},
        {{ type = "ImageToTensor", keys = ["img"] }},
        {{ type = "Collect", keys = ["img"] }},
    ] }},
]"#
    );
    let cfg = Config::from_str_at(&text, "tta.toml").unwrap();
    let views = build_tta_views(&cfg.node("pipeline").unwrap(), TtaMode::Config).unwrap();
    assert_eq!(
        views.iter().map(|v| v.flip).collect::<Vec<_>>(),
        [false, true]
    );
    views
}

fn aug_view(view: &TtaView, image: &Path, device: &Device) -> AugView {
    let r = view
        .pipeline
        .apply(Results::new(image), &mut sample_rng(0, 0, 0))
        .unwrap();
    assert_eq!(r.flip, view.flip);
    AugView {
        batch: collate(&[r], device).unwrap(),
        flip: view.flip,
    }
}

fn untrained<M: Detector>(config: &str, data: &str, extra: &[&str]) -> M {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let cfg = common::demo_config(config, data, &extra);
    let device = Device::flex();
    device.seed(0);
    mona_det::task::build_model(&cfg, &device).unwrap()
}

/// The image mirrored left-right, as a lossless PNG in `dir`.
fn mirrored(image: &Path, dir: &Path) -> PathBuf {
    let mut img = image::open(image).unwrap().to_rgb8();
    image::imageops::flip_horizontal_in_place(&mut img);
    let out = dir.join("mirrored.png");
    img.save(&out).unwrap();
    out
}

fn assert_boxes_close(a: &Detections, b: &Detections, what: &str) {
    assert_eq!(a.labels, b.labels, "{what}: labels");
    assert_eq!(a.bboxes.len(), b.bboxes.len(), "{what}: boxes");
    for (i, (x, y)) in a.bboxes.iter().zip(&b.bboxes).enumerate() {
        for k in 0..4 {
            assert!(
                (x[k] - y[k]).abs() < 1e-2,
                "{what}: box {i}: {x:?} vs {y:?}"
            );
        }
        assert!(
            (a.scores[i] - b.scores[i]).abs() < 1e-5,
            "{what}: score {i}"
        );
    }
}

/// The detections of the mirrored image, mirrored back in the view's width (`w`).
fn mirror(det: &Detections, w: f32) -> Detections {
    Detections {
        bboxes: det
            .bboxes
            .iter()
            .map(|b| [w - b[2], b[1], w - b[0], b[3]])
            .collect(),
        ..det.clone()
    }
}

/// Both properties for one detector and one image of `size`×`size` pixels.
/// Returns the plain view's detections, the flipped view's, and the mirrored image's.
fn check_views<M: Detector>(
    model: &M,
    image: &Path,
    size: usize,
) -> (Detections, Detections, Detections) {
    let device = Device::flex();
    let views = views(size);
    let plain = aug_view(&views[0], image, &device);

    // a view seen twice merges to that view's own detections
    let twice = model
        .predict_aug(&[
            aug_view(&views[0], image, &device),
            aug_view(&views[0], image, &device),
        ])
        .unwrap();
    let once = model.predict_aug(&[plain]).unwrap();
    assert!(!once.bboxes.is_empty(), "the test needs detections");
    assert_boxes_close(&twice, &once, "twice vs once");

    // the flipped view of the image is the plain view of the mirrored image
    let dir = tempfile::tempdir().unwrap();
    let mirror_image = mirrored(image, dir.path());
    let flipped = model
        .predict_aug(&[aug_view(&views[1], image, &device)])
        .unwrap();
    let of_mirror = model
        .predict_aug(&[aug_view(&views[0], &mirror_image, &device)])
        .unwrap();
    assert_boxes_close(&flipped, &mirror(&of_mirror, size as f32), "flipped view");
    (once, flipped, of_mirror)
}

#[test]
fn retinanet_merges_views_as_mmdet_aug_test_bboxes() {
    let model: RetinaNet = untrained(
        "det_demo_swin_mona_retinanet",
        "det-demo",
        &["model.test_cfg.score_thr=0.005"],
    );
    let image = root()
        .join("data/det-demo/VOC2007/JPEGImages/2019_YELL_2_541000_4977000_image_crop_0_0.jpg");
    let (once, _, _) = check_views(&model, &image, 200);
    // one plain view through the merge is the prediction without augmentation (at scale
    // factor 1 the boxes are not rescaled, so they agree exactly)
    let device = Device::flex();
    let r = views(200)[0]
        .pipeline
        .apply(Results::new(&image), &mut sample_rng(0, 0, 0))
        .unwrap();
    let plain = predict_sample(&model, r, &device).unwrap();
    assert_eq!(once, plain);
}

#[test]
fn cascade_mask_rcnn_merges_proposals_boxes_and_masks() {
    let model: CascadeRcnn = untrained("mask_demo_swin_mona_cascade", "mask-demo", &[]);
    let image = root().join("data/mask-demo/images/img2d_r2_c0.png");
    let (once, flipped, of_mirror) = check_views(&model, &image, 128);
    for det in [&once, &flipped] {
        assert_eq!(det.masks.len(), det.bboxes.len());
        assert!(det.masks.iter().all(|m| m.dimensions() == (128, 128)));
    }
    // the flipped view's masks, flipped back, are the mirrored image's masks mirrored
    // (up to the few pixels that bilinear pasting at mirrored positions rounds apart)
    let (mut differ, mut area) = (0usize, 0usize);
    for (m, o) in flipped.masks.iter().zip(&of_mirror.masks) {
        let o = image::imageops::flip_horizontal(o);
        area += o.pixels().filter(|p| p[0] > 0).count();
        differ += m.pixels().zip(o.pixels()).filter(|(a, b)| a != b).count();
    }
    assert!(area > 0, "the test needs mask pixels");
    assert!(
        differ * 100 <= area,
        "{differ} of {area} mask pixels differ from the mirrored image's"
    );
}
