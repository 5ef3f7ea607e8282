//! The plugin's detection head, `SharedTowerRetinaHead`, trained and tested through the
//! plugin's own binaries on the shipped detection demo, with RetinaNet's anchor logic.

mod common;

use common::{error_line, metric, run};

use mona_core::checkpoint::StateDict;

const CONFIG: &str = "examples/plugin-adapter/configs/det_demo_shared_tower_retinanet.toml";

#[test]
fn trains_and_tests_the_plugin_head_on_the_det_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    let work_s = work.to_str().expect("utf-8 path");
    // Two of the demo's eight epochs keep the test short; the head learns within them.
    let (code, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_plugin-train"),
        &[
            CONFIG,
            "--work-dir",
            work_s,
            "--cfg-options",
            "runner.max_epochs=2",
            "evaluation.interval=2",
            "checkpoint_config.interval=2",
        ],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let trained = metric(&stdout, "mAP");
    assert!(trained > 0.0 && trained <= 1.0, "{stdout}");

    // The head's parameters under its own field names, and none of RetinaHead's towers.
    let ckpt = work.join("epoch_2.safetensors");
    let sd = StateDict::read(&ckpt).expect("checkpoint reads");
    for (key, shape) in [
        ("bbox_head.shared_convs.0.conv.weight", vec![32, 32, 3, 3]),
        ("bbox_head.shared_convs.1.conv.bias", vec![32]),
        // 9 anchors per location, 1 class, 4 deltas.
        ("bbox_head.retina_cls.weight", vec![9, 32, 3, 3]),
        ("bbox_head.retina_reg.bias", vec![36]),
    ] {
        let tensor = sd
            .tensors
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from {ckpt:?}"));
        assert_eq!(tensor.shape().to_vec(), shape, "{key}");
    }
    assert!(!sd.tensors.keys().any(|k| k.contains("cls_convs")));

    // `plugin-test` of the checkpoint reproduces the final evaluation of training.
    let (code, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_plugin-test"),
        &[CONFIG, ckpt.to_str().expect("utf-8 path")],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(metric(&stdout, "mAP"), trained);

    // `plugin-infer` runs the plugin's head on an image: records and a drawing.
    let out = dir.path().join("infer");
    let image = "data/det-demo/VOC2007/JPEGImages/OSBS_029_1_1.jpg";
    let (code, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_plugin-infer"),
        &[
            CONFIG,
            ckpt.to_str().expect("utf-8 path"),
            image,
            "--out-dir",
            out.to_str().expect("utf-8 path"),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let records: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("OSBS_029_1_1.json")).expect("records written"),
    )
    .expect("json");
    assert!(
        records.as_array().is_some_and(|r| !r.is_empty()),
        "{records}"
    );
    assert!(out.join("OSBS_029_1_1.png").is_file());
}

/// RetinaHead's tower depth is refused on a head that does not read it, and so is a
/// misspelt key.
#[test]
fn keys_the_plugin_head_does_not_read_are_refused() {
    for (option, wanted) in [
        (
            "model.bbox_head.stacked_convs=4",
            "model.bbox_head.stacked_convs: RetinaHead's tower depth, which a SharedTowerRetinaHead does not read",
        ),
        (
            "model.bbox_head.shared_conv=1",
            "model.bbox_head: unknown field `shared_conv`",
        ),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let work = dir.path().join("work");
        let work = work.to_str().expect("utf-8 path");
        let error = error_line(
            env!("CARGO_BIN_EXE_plugin-train"),
            &[CONFIG, "--work-dir", work, "--cfg-options", option],
        );
        assert!(error.contains(wanted), "{option}: {error}");
    }
}
