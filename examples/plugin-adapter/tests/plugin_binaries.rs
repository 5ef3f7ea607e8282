//! The plugin's own binaries: mona's tools with this crate linked in, training and testing the
//! plugin's adapter and decode head on the shipped segmentation demo with no edit to the core.

mod common;

use std::collections::HashMap;

use common::{error_line, metric, run};

use mona_core::checkpoint::{StateDict, write_safetensors};

const CONFIG: &str = "examples/plugin-adapter/configs/seg_demo_scaled_lowrank_segformer.toml";

#[test]
fn list_registry_shows_the_plugins_parts() {
    let (code, stdout, stderr) = run(env!("CARGO_BIN_EXE_plugin-list-registry"), &[]);
    assert_eq!(code, Some(0), "{stderr}");
    let line = |kind: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} line in\n{stdout}"))
            .to_string()
    };
    assert_eq!(
        line("decode head"),
        "decode head (SegHeadEntry): FCNHead, SegformerHead, UPerHead"
    );
    assert_eq!(
        line("dense head"),
        "dense head (DenseHeadEntry): RPNHead, RetinaHead, SharedTowerRetinaHead"
    );
    assert!(
        line("tuning method").ends_with("partial_1, scaled_lowrank"),
        "{stdout}"
    );
    // The core's own registrations are all there too.
    assert!(
        line("model").contains("EncoderDecoder, ImageClassifier, RetinaNet"),
        "{stdout}"
    );
}

#[test]
fn trains_and_tests_the_plugin_adapter_and_head_on_the_seg_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    let work_s = work.to_str().expect("utf-8 path");
    let (code, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_plugin-train"),
        &[CONFIG, "--work-dir", work_s],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let trained = metric(&stdout, "mIoU");
    assert!(trained > 0.0 && trained <= 100.0, "{stdout}");

    // The checkpoint holds the plugin modules under their own field names, and nothing of
    // the UPerHead the base config had.
    let ckpt = work.join("iter_160.safetensors");
    let sd = StateDict::read(&ckpt).expect("checkpoint reads");
    for key in [
        "backbone.layers.0.blocks.0.my_module_1.norm.weight",
        "backbone.layers.0.blocks.0.my_module_1.down.weight",
        "backbone.layers.3.blocks.1.my_module_1.up.bias",
        "backbone.layers.3.blocks.1.my_module_1.scale",
        "decode_head.convs.3.conv.weight",
        "decode_head.convs.0.bn.running_var",
        "decode_head.fusion_conv.conv.weight",
        "decode_head.conv_seg.bias",
        "auxiliary_head.convs.0.conv.weight",
    ] {
        assert!(sd.tensors.contains_key(key), "{key} missing from {ckpt:?}");
    }
    assert!(!sd.tensors.keys().any(|k| k.contains("psp_modules")));
    assert_eq!(
        sd.tensors["decode_head.fusion_conv.conv.weight"]
            .shape()
            .to_vec(),
        vec![32, 128, 1, 1]
    );

    // `plugin-test` of the checkpoint reproduces the final evaluation of training.
    let ckpt_s = ckpt.to_str().expect("utf-8 path");
    let (code, stdout, stderr) = run(env!("CARGO_BIN_EXE_plugin-test"), &[CONFIG, ckpt_s]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(metric(&stdout, "mIoU"), trained);

    // A plugin parameter missing from the checkpoint (renamed) is an error naming it, not a
    // module that silently acts as the identity.
    let raw = StateDict::read_raw(&ckpt).expect("checkpoint reads");
    let renamed: Vec<_> = raw
        .tensors
        .iter()
        .map(|(k, v)| (k.replace("my_module_1.up.", "my_module_1.upp."), v.clone()))
        .collect();
    let bad = dir.path().join("renamed.safetensors");
    let metadata: HashMap<String, String> = raw.metadata.clone().into_iter().collect();
    write_safetensors(&bad, &renamed, metadata).expect("writes");
    let (code, stdout, stderr) = run(
        env!("CARGO_BIN_EXE_plugin-test"),
        &[CONFIG, bad.to_str().expect("utf-8 path")],
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in\n{stderr}"));
    assert!(error.contains("renamed.safetensors"), "{error}");
    assert!(error.contains("my_module_1.up"), "{error}");
}

/// The one `error:` line of a `plugin-train` run with `option` that must fail with status 1.
fn train_error(option: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let work = dir.path().join("work");
    let work = work.to_str().expect("utf-8 path");
    error_line(
        env!("CARGO_BIN_EXE_plugin-train"),
        &[CONFIG, "--work-dir", work, "--cfg-options", option],
    )
}

#[test]
fn a_misspelt_plugin_head_names_the_file_key_and_nearest_names() {
    assert_eq!(
        train_error("model.decode_head.type=SegFormerHead"),
        "error: --cfg-options: model.decode_head.type: unknown decode head type \"SegFormerHead\" \
         (did you mean SegformerHead?); registered: FCNHead, SegformerHead, UPerHead"
    );
    // A key of the head's own that it does not read is refused too.
    let error = train_error("model.decode_head.interpolation_mode=bilinear");
    assert!(
        error.contains(
            "model.decode_head.interpolation_mode: unknown key of a SegformerHead (did you mean interpolate_mode?)"
        ),
        "{error}"
    );
}

#[test]
fn count_params_counts_the_plugin_parts() {
    let (code, stdout, stderr) = run(env!("CARGO_BIN_EXE_plugin-count-params"), &[CONFIG]);
    assert_eq!(code, Some(0), "{stderr}");
    // Per block (2r + 4)·C + r with r = 8, two blocks per stage of C = 32, 64, 128, 256.
    assert!(stdout.contains("scaled_lowrank 19,264 (0.85%)"), "{stdout}");
    // SegformerHead: 1×1 convs 480·32 + BN 4·64, fusion 128·32 + BN 64, conv_seg 32·4 + 4
    // trainable, plus the running statistics of its five BNs (5·2·32).
    assert!(
        stdout.contains("decode_head: 20,228 parameters = 20,228 original + 0 added"),
        "{stdout}"
    );
    assert!(
        stdout.contains("trainable (decode_head): 19,908"),
        "{stdout}"
    );
}
