//! `custom_hooks`: hooks named by `type` from the hook registry run with the built-in ones;
//! a misspelt hook or a key a hook does not read stops before training, naming the key.

mod common;

use std::path::Path;

use common::{run, write};

/// The classification demo on 16 training and 8 validation images, 1 epoch, with `hooks`
/// as its `custom_hooks`.
fn config(dir: &Path, hooks: &str) -> String {
    let base = common::workspace().join("configs/demo/fashion_mnist_swin_mona.toml");
    let train_ann = common::demo_split(dir, "train", 16);
    let val_ann = common::demo_split(dir, "val", 8);
    let data = common::workspace().join("data/fashion-mnist-mini");
    write(
        dir,
        "hooks.toml",
        &format!(
            r#"_base_ = "{base}"
custom_hooks = {hooks}
log_config = {{ interval = 1 }}

[data]
samples_per_gpu = 4

[data.train]
data_prefix = "{data}"
ann_file = "{train_ann}"

[data.val]
data_prefix = "{data}"
ann_file = "{val_ann}"

[runner]
max_epochs = 1
"#,
            base = base.display(),
            data = data.display(),
        ),
    )
}

fn records(work: &Path, mode: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(work.join("log.jsonl"))
        .expect("log.jsonl")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|r| r["mode"] == mode)
        .collect()
}

#[test]
fn registered_hooks_run_with_the_built_in_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        r#"[{ type = "NumClassCheckHook" }, { type = "CheckInvalidLossHook", interval = 1 }, { type = "MemoryProfilerHook", interval = 2 }]"#,
    );
    let work = dir.path().join("work");
    run(
        env!("CARGO_BIN_EXE_train"),
        &[&cfg, "--work-dir", work.to_str().expect("utf-8")],
    )
    .ok();
    let train = records(&work, "train");
    let memory = records(&work, "memory");
    // 16 images in batches of 4: one train record per iteration,
    // a memory record every second iteration, after the iteration's train record.
    let iters: Vec<u64> = train
        .iter()
        .map(|r| r["iter"].as_u64().expect("iter"))
        .collect();
    let expected: Vec<u64> = iters.iter().copied().filter(|i| i % 2 == 0).collect();
    assert!(!expected.is_empty(), "{train:?}");
    let got: Vec<u64> = memory
        .iter()
        .map(|r| r["iter"].as_u64().expect("iter"))
        .collect();
    assert_eq!(got, expected);
    for r in &memory {
        assert!(
            r["process_memory"].as_f64().expect("process_memory") > 0.0,
            "{r}"
        );
        assert!(r["memory_utilization"].as_f64().is_some(), "{r}");
    }
    let text = std::fs::read_to_string(work.join("train.log")).expect("train.log");
    assert!(
        text.contains("Memory information: process memory: "),
        "{text}"
    );
    assert_eq!(records(&work, "val").len(), 1);
}

#[test]
fn a_misspelt_hook_or_key_stops_before_training() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (hooks, expected) in [
        (
            r#"[{ type = "CheckInvalidLosHook" }]"#,
            "custom_hooks.0.type: unknown hook type \"CheckInvalidLosHook\" (did you mean CheckInvalidLossHook?); registered: CheckInvalidLossHook, MemoryProfilerHook, NumClassCheckHook",
        ),
        (
            r#"[{ type = "MemoryProfilerHook", intervl = 5 }]"#,
            "custom_hooks.0: unknown field `intervl`, expected `type` or `interval`",
        ),
        (
            r#"[{ type = "MemoryProfilerHook", interval = 0 }]"#,
            "custom_hooks.0: interval must be at least 1",
        ),
    ] {
        let cfg = config(dir.path(), hooks);
        let work = dir.path().join("work");
        let out = run(
            env!("CARGO_BIN_EXE_train"),
            &[&cfg, "--work-dir", work.to_str().expect("utf-8")],
        )
        .failed();
        let line = out.error_line();
        assert!(line.contains(expected), "{line}\nexpected: {expected}");
        assert!(line.contains("hooks.toml"), "{line}");
        assert!(!work.join("log.jsonl").exists() || records(&work, "train").is_empty());
    }
}
