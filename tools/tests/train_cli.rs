//! `train --gpus N --all-reduce K` from the command line: a data-parallel CPU run of the
//! shipped demo, and the errors for settings that cannot run.

mod common;

use common::run;

const DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";

/// `train DEMO --work-dir WORK --gpus 2 EXTRA...`.
fn train_on_two(work: &std::path::Path, extra: &[&str]) -> common::Run {
    let mut args = vec![DEMO, "--work-dir", work.to_str().unwrap(), "--gpus", "2"];
    args.extend_from_slice(extra);
    run(env!("CARGO_BIN_EXE_train"), &args)
}

#[test]
fn data_parallel_demo_epoch_on_two_cpu_replicas() {
    let work = tempfile::tempdir().unwrap();
    let out = train_on_two(
        work.path(),
        &[
            "--cfg-options",
            "runner.max_epochs=1",
            "evaluation.interval=1",
            "checkpoint_config.interval=1",
        ],
    )
    .ok();
    assert!(out.stdout.contains("accuracy_top-1: "), "{}", out.stdout);
    let log = std::fs::read_to_string(work.path().join("log.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let replicas = records
        .iter()
        .find(|r| r["mode"] == "replicas")
        .expect("a replicas record");
    assert_eq!(replicas["devices"], 2);
    assert_eq!(replicas["max_diff"], 0.0, "replicas drifted apart");
    assert!(work.path().join("epoch_1.safetensors").exists());
}

#[test]
fn nccl_on_the_cpu_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let out = train_on_two(work.path(), &["--all-reduce", "nccl"]).failed();
    assert_eq!(
        out.error_line(),
        "error: --all-reduce nccl needs CUDA devices; --device is flex (use --all-reduce host)"
    );
}

#[test]
fn unknown_all_reduce_is_a_usage_error() {
    let work = tempfile::tempdir().unwrap();
    let out = train_on_two(work.path(), &["--all-reduce", "mpi"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--all-reduce mpi: expected `host` or `nccl`"),
        "{}",
        out.stderr
    );
}
