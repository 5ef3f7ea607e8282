//! `test --aug-test`: mmseg's multi-scale and flip test-time augmentation on the seg demo;
//! the tasks without it refuse the flag before any work.

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

#[test]
fn tasks_without_test_time_augmentation_refuse_it() {
    for (config, message) in [
        (
            "configs/demo/det_demo_swin_mona_retinanet.toml",
            "error: --aug-test: detection test-time augmentation (flip) is not implemented; segmentation has it",
        ),
        (
            "configs/demo/fashion_mnist_swin_mona.toml",
            "error: --aug-test: classification has no test-time augmentation (segmentation has)",
        ),
    ] {
        let out = run(
            env!("CARGO_BIN_EXE_test"),
            &[config, "never_read.safetensors", "--aug-test"],
        )
        .failed();
        assert_eq!(out.error_line(), message);
    }
}
