//! `train --deterministic` and the config's `seed` / `deterministic`: mmdet's log line, two
//! runs of a seed identical to the byte on flex, the config keys honoured as the flags are,
//! and the promise refused on a cubecl device.

mod common;

use std::path::Path;

use common::{run, run_logging};

const CLS_DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";

/// Trains one epoch of the cls demo into `work` with `extra` arguments; returns stderr.
fn train(work: &Path, extra: &[&str]) -> String {
    let mut args = vec![CLS_DEMO, "--work-dir", work.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--cfg-options", "runner.max_epochs=1"]);
    run_logging(env!("CARGO_BIN_EXE_train"), &args, "info")
        .ok()
        .stderr
}

/// `log.jsonl` without the fields that measure the machine (`time`, `data_time`, `memory`).
fn log_without_timing(work: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(work.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            if let Some(o) = v.as_object_mut() {
                for k in ["time", "data_time", "memory"] {
                    o.remove(k);
                }
            }
            v
        })
        .collect()
}

#[test]
fn two_deterministic_runs_of_a_seed_are_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let stderr = train(&a, &["--seed", "3", "--deterministic"]);
    assert!(
        stderr.contains("Set random seed to 3, deterministic: true"),
        "{stderr}"
    );
    train(&b, &["--seed", "3", "--deterministic"]);
    // the config's keys do what the flags do
    let mut args = vec![CLS_DEMO, "--work-dir", c.to_str().unwrap()];
    args.extend_from_slice(&[
        "--cfg-options",
        "runner.max_epochs=1",
        "seed=3",
        "deterministic=true",
    ]);
    let stderr = run_logging(env!("CARGO_BIN_EXE_train"), &args, "info")
        .ok()
        .stderr;
    assert!(
        stderr.contains("Set random seed to 3, deterministic: true"),
        "{stderr}"
    );
    let ckpt = |w: &Path| std::fs::read(w.join("epoch_1.safetensors")).unwrap();
    assert!(ckpt(&a) == ckpt(&b), "the checkpoints differ");
    // (c's checkpoint embeds its own config text; its losses and metrics show its seed)
    let log = log_without_timing(&a);
    assert!(log.len() > 1);
    assert_eq!(log, log_without_timing(&b));
    assert_eq!(
        log,
        log_without_timing(&c),
        "the config's seed was not used"
    );
}

#[test]
fn another_seed_trains_another_model() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let stderr = train(&a, &[]);
    assert!(
        stderr.contains("Set random seed to 0, deterministic: false"),
        "{stderr}"
    );
    train(&b, &["--seed", "1"]);
    assert_ne!(log_without_timing(&a), log_without_timing(&b));
}

#[test]
fn a_cubecl_device_refuses_deterministic_training() {
    let dir = tempfile::tempdir().unwrap();
    for device in ["cubecl-cpu", "cuda:0"] {
        let out = run(
            env!("CARGO_BIN_EXE_train"),
            &[
                CLS_DEMO,
                "--work-dir",
                dir.path().to_str().unwrap(),
                "--device",
                device,
                "--deterministic",
            ],
        )
        .failed();
        assert_eq!(
            out.error_line(),
            format!(
                "error: deterministic training is not available on {device}: burn's cubecl kernels are chosen by timing them (autotune) and CUDA sums gradients with float atomics, so runs may round differently; train on flex (the CPU default, bit-reproducible for a seed) or drop `deterministic`"
            )
        );
    }
}
