//! `print-config`: merged configs, `--cfg-options`, and errors that name file and key.

mod common;

use common::{run, write};

const BIN: &str = env!("CARGO_BIN_EXE_print-config");
const COCO_MONA: &str = "configs/mona/swin-b_coco/cascade_mask_swin_base_3x_coco_mona.toml";

#[test]
fn prints_the_merged_coco_config() {
    let out = run(BIN, &[COCO_MONA]).ok();
    let table: toml::Table = out.stdout.parse().expect("print-config prints valid TOML");
    let backbone = &table["model"]["backbone"];
    assert_eq!(backbone["type"].as_str(), Some("SwinTransformer"));
    assert_eq!(backbone["embed_dim"].as_integer(), Some(128));
    assert_eq!(backbone["method"]["type"].as_str(), Some("mona"));
    // Merged from the base model file.
    assert!(table["model"].get("neck").is_some());
    assert!(table.get("_base_").is_none());
}

#[test]
fn cfg_options_take_effect() {
    let out = run(
        BIN,
        &[
            COCO_MONA,
            "--cfg-options",
            "model.backbone.embed_dim=96",
            "model.backbone.method=None",
            "model.backbone.method.type=lora",
            "optimizer.lr=0.5",
        ],
    )
    .ok();
    let table: toml::Table = out.stdout.parse().expect("valid TOML");
    let backbone = &table["model"]["backbone"];
    assert_eq!(backbone["embed_dim"].as_integer(), Some(96));
    let method = backbone["method"].as_table().expect("method table");
    assert_eq!(method.get("type").and_then(|t| t.as_str()), Some("lora"));
    assert!(
        method.get("bottleneck").is_none(),
        "None removed the old method table"
    );
    assert_eq!(table["optimizer"]["lr"].as_float(), Some(0.5));
}

#[test]
fn missing_file_and_bad_toml_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.toml").display().to_string();
    let out = run(BIN, &[&missing]).failed();
    assert!(out.error_line().contains(&missing), "{}", out.error_line());

    let bad = write(dir.path(), "bad.toml", "[model\nx = 1\n");
    let out = run(BIN, &[&bad]).failed();
    assert!(
        out.error_line().contains("bad.toml"),
        "{}",
        out.error_line()
    );

    let out = run(BIN, &[COCO_MONA, "--cfg-options", "model.backbone"]).failed();
    assert!(
        out.error_line().contains("model.backbone"),
        "{}",
        out.error_line()
    );
}
