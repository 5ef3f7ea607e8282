//! `count-params` reproduces the paper's parameter table exactly, for every method and every output-norm layout.

mod common;

use std::collections::BTreeMap;

use common::{run, write};

const BIN: &str = env!("CARGO_BIN_EXE_count-params");

/// The paper's table: (display name, trainable cell) per method, in table order.
type Column = [(&'static str, &'static str, &'static str); 9];

/// The rows shared by every Swin-L column (out_indices only moves BitFit and NormTuning).
fn swin_l(
    original: &'static str,
    bitfit: &'static str,
    norm: &'static str,
) -> (&'static str, Column) {
    (
        original,
        [
            ("mona", "Mona", "5,267,712 (2.70%)"),
            ("adapter", "Adapter", "4,659,456 (2.39%)"),
            ("adaptformer", "AdaptFormer", "2,329,728 (1.19%)"),
            ("lora", "LoRA", "4,620,288 (2.37%)"),
            ("bitfit", "BitFit", bitfit),
            ("norm_tuning", "NormTuning", norm),
            ("partial_1", "Partial-1", "28,339,632 (14.53%)"),
            ("fixed", "Fixed", "0"),
            ("full", "Full", "194,998,164 (100%)"),
        ],
    )
}

const SWIN_B_COCO: (&str, Column) = (
    "86,745,016",
    [
        ("mona", "Mona", "3,667,456 (4.23%)"),
        ("adapter", "Adapter", "3,107,328 (3.58%)"),
        ("adaptformer", "AdaptFormer", "1,553,664 (1.79%)"),
        ("lora", "LoRA", "3,080,192 (3.55%)"),
        ("bitfit", "BitFit", "201,656 (0.23%)"),
        ("norm_tuning", "NormTuning", "59,392 (0.07%)"),
        ("partial_1", "Partial-1", "12,601,632 (14.53%)"),
        ("fixed", "Fixed", "0"),
        ("full", "Full", "86,745,016 (100%)"),
    ],
);

fn digits(text: &str) -> u64 {
    text.chars()
        .filter(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

/// Runs `--all-methods --json` on `config` and checks every row and every JSON line.
fn check_all_methods(config: &str, extra: &[&str], original: &str, column: &Column) {
    let mut args = vec![config, "--all-methods", "--json"];
    args.extend_from_slice(extra);
    let out = run(BIN, &args).ok();
    let rows: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let json: BTreeMap<String, serde_json::Value> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            (v["method"].as_str().unwrap_or("").to_string(), v)
        })
        .collect();
    assert!(
        out.stdout
            .contains(&format!("original backbone {original} parameters")),
        "{}",
        out.stdout
    );
    for (method, display, cell) in column {
        let row = format!("{display} {cell}");
        assert!(
            rows.contains(&row),
            "{config}: no row `{row}` in\n{}",
            out.stdout
        );
        let v = &json[*method];
        assert_eq!(v["text"].as_str(), Some(*cell), "{config}: {method}");
        assert_eq!(
            v["backbone_original"].as_u64(),
            Some(digits(original)),
            "{method}"
        );
        let trainable = if *cell == "0" {
            0
        } else {
            digits(cell.split(' ').next().unwrap_or(""))
        };
        assert_eq!(
            v["trainable"].as_u64(),
            Some(trainable),
            "{config}: {method}"
        );
        assert_eq!(
            v["backbone_total"].as_u64(),
            Some(digits(original) + v["added"].as_u64().unwrap_or(u64::MAX)),
            "{method}: total = original + added"
        );
    }
    // Exactly the paper's methods: the shipped tools link no plugin.
    assert_eq!(json.len(), column.len(), "{}", out.stdout);
}

const COCO: &str = "configs/mona/swin-b_coco/cascade_mask_swin_base_3x_coco_mona.toml";
const ADE: &str = "configs/mona/swin-l_ade20k/ade20k_upernet_swin_large_160k_mona.toml";
const VOC_DET: &str = "configs/mona/swin-l_voc/voc_retinanet_swin_large_1x_mona.toml";
const FLOWER: &str = "configs/mona/swin-l_oxford-flower/swin-large_4xb8_oxford_flower_mona.toml";

#[test]
fn swin_b_coco_all_methods() {
    let (original, column) = SWIN_B_COCO;
    check_all_methods(COCO, &[], original, &column);
}

#[test]
fn swin_l_ade20k_all_methods() {
    let (original, column) = swin_l("194,998,164", "302,484 (0.16%)", "89,088 (0.05%)");
    check_all_methods(ADE, &[], original, &column);
}

#[test]
fn swin_l_voc_det_out_1_to_3() {
    let (_, mut column) = swin_l("", "302,292 (0.16%)", "88,704 (0.05%)");
    column[8].2 = "194,997,780 (100%)";
    check_all_methods(VOC_DET, &[], "194,997,780", &column);
}

#[test]
fn swin_l_cls_out_3() {
    let (_, mut column) = swin_l("", "301,140 (0.15%)", "86,400 (0.04%)");
    column[8].2 = "194,995,476 (100%)";
    check_all_methods(FLOWER, &[], "194,995,476", &column);
}

/// The same numbers from a config written here, independent of the shipped configs.
#[test]
fn swin_b_from_a_plain_config_and_cfg_options() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        "swin_b.toml",
        r#"
[model.backbone]
type = "SwinTransformer"
embed_dim = 96
depths = [2, 2, 18, 2]
num_heads = [4, 8, 16, 32]
window_size = 7
out_indices = [0, 1, 2, 3]

[model.backbone.method]
type = "fixed"
"#,
    );
    // embed_dim through --cfg-options, so the override path is exercised too.
    let (original, column) = SWIN_B_COCO;
    check_all_methods(
        &cfg,
        &["--cfg-options", "model.backbone.embed_dim=128"],
        original,
        &column,
    );
}

#[test]
fn single_config_report() {
    let out = run(BIN, &[COCO]).ok();
    let rows: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        rows.contains(&"Mona 3,667,456 (4.23%)".to_string()),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("method: mona (official SwinTransformer_mona)")
    );
    assert!(
        out.stdout
            .contains("backbone: 90,412,472 parameters = 86,745,016 original + 3,667,456 added"),
        "{}",
        out.stdout
    );
    // 18+2+2+2 = 24 blocks, each with my_module_1 and my_module_2.
    assert!(
        rows.iter()
            .any(|r| r.starts_with("layers.*.blocks.*.my_module_1.gamma x24 ")),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("attn.qkv"), "only adapter keys train");
    // The Cascade Mask R-CNN parts, counted by hand from mmdet's modules: FPN 4 laterals
    // (1x1) + 4 output convs (3x3) at 256; RPN conv + 3 cls + 12 reg outputs; per stage a
    // Shared4Conv1FC box head (convs without bias + BN, fc 12544->1024, 81 + 320 outputs)
    // and an FCN mask head (4 convs, 2x2 deconv, 80 logits). BN running statistics do not
    // train.
    for line in [
        "neck: 2,852,864 parameters",
        "rpn_head: 593,935 parameters",
        "roi_head: 54,791,331 parameters",
        "trainable (roi_head): 54,785,187",
    ] {
        assert!(out.stdout.contains(line), "no {line:?} in {}", out.stdout);
    }
}

#[test]
fn partial_1_keeps_constant_indices_and_frozen_stages_is_reported() {
    let out = run(
        BIN,
        &[
            VOC_DET,
            "--cfg-options",
            "model.backbone.method=None",
            "model.backbone.method.type=partial_1",
        ],
    )
    .ok();
    assert!(
        out.stdout.contains("layers.3.blocks.1.attn.qkv.weight"),
        "{}",
        out.stdout
    );

    // VOC RetinaNet sets frozen_stages = 1: patch_embed stops training under full tuning.
    let out = run(
        BIN,
        &[
            VOC_DET,
            "--cfg-options",
            "model.backbone.method=None",
            "model.backbone.method.type=full",
        ],
    )
    .ok();
    assert!(
        out.stdout.contains("frozen_stages = 1 also freezes"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("patch_embed.proj.weight"),
        "{}",
        out.stdout
    );
}

#[test]
fn unknown_method_names_file_key_and_close_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        "typo.toml",
        r#"
[model.backbone]
type = "SwinTransformer"
embed_dim = 24
depths = [2, 2, 2, 2]
num_heads = [1, 2, 4, 8]

[model.backbone.method]
type = "mnoa"
"#,
    );
    let out = run(BIN, &[&cfg]).failed();
    let line = out.error_line();
    assert!(line.contains("typo.toml"), "{line}");
    assert!(line.contains("model.backbone.method.type"), "{line}");
    assert!(line.contains("\"mnoa\""), "{line}");
    assert!(line.contains("did you mean mona"), "{line}");

    // Inherited from a shipped config: the error names the file that set the bad key.
    let child = write(
        dir.path(),
        "child.toml",
        &format!(
            "_base_ = \"{}\"\n[model.backbone.method]\n_delete_ = true\ntype = \"lroa\"\n",
            common::workspace().join(COCO).display()
        ),
    );
    let out = run(BIN, &[&child]).failed();
    let line = out.error_line();
    assert!(line.contains("child.toml"), "{line}");
    assert!(line.contains("model.backbone.method.type"), "{line}");
    assert!(line.contains("lora"), "{line}");
}
