//! `test --aug-test`: mmseg's multi-scale and flip test-time augmentation on the seg demo,
//! flip for detection (and a config's own flip in `test` and `infer`); classification refuses
//! the flag before any work.

mod common;

use common::{run, run_logging};

const SEG_DEMO: &str = "configs/demo/seg_demo_swin_mona_upernet.toml";

fn metric(stdout: &str, name: &str) -> f64 {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {stdout}"))
        .parse()
        .unwrap()
}

#[test]
fn segmentation_runs_twelve_views_and_reports_miou() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    common::train_into(
        SEG_DEMO,
        &work,
        &[
            "runner.max_iters=8",
            "evaluation.interval=8",
            "checkpoint_config.interval=8",
        ],
    );
    let ckpt = work.join("iter_8.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let plain = run(env!("CARGO_BIN_EXE_test"), &[SEG_DEMO, ckpt]).ok();
    let aug = run_logging(
        env!("CARGO_BIN_EXE_test"),
        &[SEG_DEMO, ckpt, "--aug-test"],
        "info",
    )
    .ok();
    assert!(
        aug.stderr.contains("test-time augmentation: 12 views"),
        "{}",
        aug.stderr
    );
    for m in ["mIoU", "mAcc", "aAcc"] {
        let (p, a) = (metric(&plain.stdout, m), metric(&aug.stdout, m));
        assert!((0.0..=100.0).contains(&a), "{m} {a}");
        assert!(p.is_finite());
    }
}

const DET_DEMO: &str = "configs/demo/det_demo_swin_mona_retinanet.toml";
const FLIP: &str = "data.test.pipeline.1.flip=true";

#[test]
fn detection_merges_the_flipped_view_in_test_and_infer() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    common::train_into(
        DET_DEMO,
        &work,
        &["runner.max_epochs=1", "evaluation.interval=1"],
    );
    let ckpt = work.join("epoch_1.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    let out = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let test_out = |args: &[&str], name: &str| {
        let json = out(name);
        let mut all = vec![DET_DEMO, ckpt, "--out", json.as_str()];
        all.extend_from_slice(args);
        let ran = run_logging(env!("CARGO_BIN_EXE_test"), &all, "info").ok();
        let records = std::fs::read_to_string(&json).unwrap();
        (ran, records)
    };
    let (plain, plain_records) = test_out(&[], "plain.json");
    assert!(!plain.stderr.contains("test-time augmentation"));
    let (aug, aug_records) = test_out(&["--aug-test"], "aug.json");
    assert!(
        aug.stderr
            .contains("test-time augmentation: 2 views per image"),
        "{}",
        aug.stderr
    );
    for m in ["mAP", "AP50"] {
        assert!((0.0..=1.0).contains(&metric(&aug.stdout, m)), "{m}");
        assert!(metric(&plain.stdout, m).is_finite());
    }
    assert_ne!(
        plain_records, aug_records,
        "the flipped view changes the detections"
    );
    // the config's own flip is what --aug-test does
    let (config, config_records) = test_out(&["--cfg-options", FLIP], "config.json");
    assert!(config.stderr.contains("2 views per image"));
    assert_eq!(config_records, aug_records);
    assert_eq!(config.stdout, aug.stdout);
    // infer follows the config's test pipeline, flip included
    let infer_dir = out("infer");
    // the test set's first image
    let image = "data/det-demo/VOC2007/JPEGImages/OSBS_029_1_1.jpg";
    run(
        env!("CARGO_BIN_EXE_infer"),
        &[
            DET_DEMO,
            ckpt,
            image,
            "--out-dir",
            &infer_dir,
            "--cfg-options",
            FLIP,
        ],
    )
    .ok();
    let inferred: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(std::path::Path::new(&infer_dir).join("OSBS_029_1_1.json"))
            .unwrap(),
    )
    .unwrap();
    let tested: serde_json::Value = serde_json::from_str(&aug_records).unwrap();
    let first_image: Vec<&serde_json::Value> = tested
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["image_id"] == tested[0]["image_id"])
        .collect();
    let boxes = |v: Vec<&serde_json::Value>| -> Vec<serde_json::Value> {
        v.iter().map(|r| r["bbox"].clone()).collect()
    };
    assert_eq!(
        boxes(inferred.as_array().unwrap().iter().collect()),
        boxes(first_image)
    );
}

#[test]
fn classification_refuses_test_time_augmentation() {
    let out = run(
        env!("CARGO_BIN_EXE_test"),
        &[
            "configs/demo/fashion_mnist_swin_mona.toml",
            "never_read.safetensors",
            "--aug-test",
        ],
    )
    .failed();
    assert_eq!(
        out.error_line(),
        "error: --aug-test: classification has no test-time augmentation (segmentation and detection have)"
    );
}
