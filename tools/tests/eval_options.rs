//! `test --eval-options`: `classwise=true` logs the per-category COCO AP table as mmdet does
//! (the det demo, whose one class is `Tree`); unknown keys, bad values and options a task
//! does not read are errors before any inference.

mod common;

use burn::tensor::TensorData;
use common::{run, run_logging};
use mona_core::checkpoint::write_safetensors;

const DET_DEMO: &str = "configs/demo/det_demo_swin_mona_retinanet.toml";
const CLS_DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";

/// A whole-model state dict (its keys start with `backbone.`, so they are not taken for a
/// bare backbone's) that sets the classifier's prior bias to 0: every anchor then scores
/// about 0.5, far above `score_thr`, and the rest of the model keeps its initialisation.
fn weights(dir: &std::path::Path) -> String {
    let path = dir.join("weights.safetensors");
    write_safetensors(
        &path,
        &[
            (
                "bbox_head.retina_cls.bias".to_string(),
                TensorData::new(vec![0f32; 9], [9]),
            ),
            (
                "backbone.not_a_parameter".to_string(),
                TensorData::new(vec![0f32], [1]),
            ),
        ],
        Default::default(),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn classwise_logs_the_per_category_ap_table() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = weights(dir.path());
    let out = run_logging(
        env!("CARGO_BIN_EXE_test"),
        &[
            DET_DEMO,
            &ckpt,
            "--metrics",
            "bbox",
            "--eval-options",
            "classwise=true",
        ],
        "info",
    )
    .ok();
    // The one category's AP (over IoU .50:.95 at the largest cap; its value is checked in
    // mona-det's unit test) in mmdet's table.
    let lines: Vec<&str> = out.stderr.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.ends_with("bbox AP per category:"))
        .unwrap_or_else(|| panic!("no table:\n{}", out.stderr));
    let rule = "+----------+-------+";
    assert_eq!(lines[at + 1..at + 4], [rule, "| category | AP    |", rule]);
    let row = lines[at + 4];
    let ap: f64 = row
        .strip_prefix("| Tree     | ")
        .and_then(|r| r.strip_suffix(" |"))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("row {row:?}"));
    assert!((0.0..=1.0).contains(&ap), "{row}");
    assert_eq!(lines[at + 5], rule);

    // Without the option (and none in the config) there is no table.
    let plain = run_logging(
        env!("CARGO_BIN_EXE_test"),
        &[DET_DEMO, &ckpt, "--metrics", "bbox"],
        "info",
    )
    .ok();
    assert!(
        !plain.stderr.contains("AP per category"),
        "{}",
        plain.stderr
    );
}

#[test]
fn unknown_or_bad_eval_options_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = weights(dir.path());
    let cases: [(&str, &str, &str); 3] = [
        (
            DET_DEMO,
            "classwize=true",
            "error: --eval-options classwize: detection evaluation takes classwise",
        ),
        (
            DET_DEMO,
            "classwise=yes",
            "error: --eval-options classwise=yes: expected true or false",
        ),
        (
            CLS_DEMO,
            "classwise=true",
            "error: --eval-options classwise: classification evaluation takes no options",
        ),
    ];
    for (config, option, message) in cases {
        let out = run(
            env!("CARGO_BIN_EXE_test"),
            &[config, &ckpt, "--eval-options", option],
        )
        .failed();
        assert_eq!(out.error_line(), message, "{}", out.stderr);
    }
    // Not KEY=VALUE: refused by the argument parser (usage error, status 2).
    let out = run(
        env!("CARGO_BIN_EXE_test"),
        &[DET_DEMO, &ckpt, "--eval-options", "classwise"],
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("expected KEY=VALUE, got `classwise`"),
        "{}",
        out.stderr
    );
}
