//! `convert-checkpoint`: release files through a backbone, plain copies, and bad inputs.

mod common;

use std::collections::BTreeSet;

use common::{fixtures, run, write};
use mona_core::checkpoint::StateDict;

const BIN: &str = env!("CARGO_BIN_EXE_convert-checkpoint");

const TINY_MONA: &str = r#"
[model.backbone]
type = "SwinTransformer"
embed_dim = 24
depths = [2, 2, 2, 2]
num_heads = [1, 2, 4, 8]
window_size = 7
out_indices = [0, 1, 2, 3]

[model.backbone.method]
type = "mona"
"#;

fn release() -> String {
    fixtures()
        .join("swin_mona_tiny.release.pth")
        .display()
        .to_string()
}

/// The lines of the report section that starts with `title`.
fn section<'a>(stdout: &'a str, title: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with(title))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(str::trim)
        .collect()
}

#[test]
fn release_file_through_the_tiny_mona_backbone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(dir.path(), "tiny.toml", TINY_MONA);
    let out_path = dir.path().join("backbone.safetensors");
    let out_str = out_path.display().to_string();
    let out = run(BIN, &[&release(), &out_str, "--config", &cfg]).ok();
    let stdout = &out.stdout;
    assert!(stdout.contains("(top-level key `model`)"), "{stdout}");

    let missing = section(stdout, "missing");
    for key in [
        "layers.*.blocks.*.my_module_1.gamma (x8)",
        "layers.*.blocks.*.my_module_2.adapter_conv.projector.weight (x8)",
        "norm0.weight",
        "norm1.bias",
        "norm2.weight",
        "norm3.bias",
    ] {
        assert!(
            missing.contains(&key),
            "missing lacks {key}: {missing:?}\n{stdout}"
        );
    }
    assert!(
        missing
            .iter()
            .all(|k| k.contains("my_module_") || k.starts_with("norm")),
        "only adapters and output norms are missing: {missing:?}"
    );

    let unused = section(stdout, "unused");
    let unused: BTreeSet<&str> = unused.into_iter().collect();
    assert_eq!(
        unused,
        BTreeSet::from(["norm.weight", "norm.bias", "head.weight", "head.bias"]),
        "{stdout}"
    );

    let recomputed = section(stdout, "recomputed");
    assert!(
        recomputed.contains(&"layers.*.blocks.*.attn.relative_position_index (x8)"),
        "{recomputed:?}"
    );
    assert!(
        recomputed.contains(&"layers.*.blocks.1.attn_mask (x4)"),
        "{recomputed:?}"
    );

    // The written file: exactly the applied keys, official names, values from the release.
    let written = StateDict::read(&out_path).expect("output is readable");
    let source = StateDict::read(release()).expect("release is readable");
    assert!(
        written
            .tensors
            .keys()
            .all(|k| !k.contains("my_module") && !k.starts_with("head."))
    );
    assert!(
        written
            .tensors
            .contains_key("layers.2.blocks.1.attn.qkv.weight")
    );
    assert!(!written.tensors.contains_key("norm.weight"));
    assert!(!written.tensors.keys().any(|k| k.ends_with("attn_mask")));
    for (key, data) in &written.tensors {
        assert_eq!(Some(data), source.tensors.get(key), "{key} changed");
    }
    assert!(stdout.contains(&format!(
        "wrote {out_str}: {} tensors",
        written.tensors.len()
    )));
}

#[test]
fn strict_fails_on_a_release_file_and_passes_on_the_task_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(dir.path(), "tiny.toml", TINY_MONA);
    let out_path = dir.path().join("out.safetensors").display().to_string();
    let out = run(BIN, &[&release(), &out_path, "--config", &cfg, "--strict"]).failed();
    assert!(
        out.error_line().contains("swin_mona_tiny.release.pth"),
        "{}",
        out.error_line()
    );
    assert!(
        !std::path::Path::new(&out_path).exists(),
        "nothing written on failure"
    );

    // The mmdet layout (`state_dict`, `backbone.` prefix) holds everything, adapters included.
    let mmdet = fixtures()
        .join("swin_mona_tiny.mmdet.pth")
        .display()
        .to_string();
    let out = run(BIN, &[&mmdet, &out_path, "--config", &cfg, "--strict"]).ok();
    assert!(out.stdout.contains("missing 0 |"), "{}", out.stdout);
    let written = StateDict::read(&out_path).expect("readable");
    assert!(
        written
            .tensors
            .contains_key("layers.0.blocks.0.my_module_1.gamma")
    );
    assert!(written.tensors.keys().all(|k| !k.starts_with("backbone.")));
}

#[test]
fn plain_conversion_keeps_every_float_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("release.safetensors");
    run(BIN, &[&release(), &out_path.display().to_string()]).ok();
    let written = StateDict::read(&out_path).expect("readable");
    let source = StateDict::read(release()).expect("readable");
    assert_eq!(written.tensors, source.tensors);
    assert!(written.tensors.contains_key("head.weight"));

    // safetensors in, safetensors out.
    let again = dir.path().join("again.safetensors");
    run(
        BIN,
        &[
            &out_path.display().to_string(),
            &again.display().to_string(),
        ],
    )
    .ok();
    assert_eq!(
        StateDict::read(&again).expect("readable").tensors,
        source.tensors
    );
}

#[test]
fn truncated_text_and_missing_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_path = dir.path().join("out.safetensors").display().to_string();

    let bytes = std::fs::read(release()).expect("fixture");
    let truncated = dir.path().join("truncated.pth");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let text = write(dir.path(), "notes.pth", "this is not a checkpoint\n");
    let fake_st = write(dir.path(), "fake.safetensors", "{\"not\": \"safetensors\"}");
    let missing = dir.path().join("absent.pth").display().to_string();

    for input in [truncated.display().to_string(), text, fake_st, missing] {
        let out = run(BIN, &[&input, &out_path]).failed();
        assert!(
            out.error_line().contains(&input),
            "{input}: {}",
            out.error_line()
        );
    }
    assert!(!std::path::Path::new(&out_path).exists());

    // Through a backbone the input is read first: the same error.
    let cfg = write(dir.path(), "tiny.toml", TINY_MONA);
    let t = truncated.display().to_string();
    let out = run(BIN, &[&t, &out_path, "--config", &cfg]).failed();
    assert!(out.error_line().contains(&t), "{}", out.error_line());
}
