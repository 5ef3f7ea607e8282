//! `train --gpus N --all-reduce K` and `--launcher` from the command line: a data-parallel
//! CPU run of the shipped demo, and the errors for settings that cannot run (the MPI runs
//! themselves are in `train_mpi.rs`).

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
fn an_epoch_on_two_devices_is_padded_as_mmcv_pads_it() {
    let work = tempfile::tempdir().unwrap();
    // 41 images in batches of 16 on 2 devices: mmcv's DistributedSampler pads to 42, 21 per
    // device, so 2 iterations (batches of 16, then of 5), no image left out
    let split = common::demo_split(work.path(), "train", 41);
    let args = [
        DEMO,
        "--work-dir",
        work.path().to_str().unwrap(),
        "--gpus",
        "2",
        "--cfg-options",
        &format!("data.train.ann_file={split}"),
        "data.samples_per_gpu=16",
        "runner.max_epochs=1",
        "evaluation.interval=1",
    ];
    let out = common::run_logging(env!("CARGO_BIN_EXE_train"), &args, "warn").ok();
    assert!(!out.stderr.contains("left out"), "{}", out.stderr);
    let log = std::fs::read_to_string(work.path().join("log.jsonl")).unwrap();
    let val: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["mode"] == "val")
        .expect("a val record");
    assert_eq!(
        (val["epoch"].as_u64(), val["iter"].as_u64()),
        (Some(1), Some(2))
    );
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

#[cfg(not(feature = "mpi"))]
#[test]
fn the_mpi_launcher_needs_an_mpi_build() {
    let work = tempfile::tempdir().unwrap();
    let out = run(
        env!("CARGO_BIN_EXE_train"),
        &[
            DEMO,
            "--work-dir",
            work.path().to_str().unwrap(),
            "--launcher",
            "mpi",
        ],
    )
    .failed();
    assert_eq!(
        out.error_line(),
        "error: --launcher mpi needs a build with MPI: `cargo build --release -p mona-tools --features mpi` (Open MPI's libopenmpi-dev and clang installed)"
    );
    assert!(
        std::fs::read_dir(work.path()).unwrap().next().is_none(),
        "nothing is written before the launcher is up"
    );
    let out = run(
        env!("CARGO_BIN_EXE_test"),
        &[DEMO, "never_read.safetensors", "--launcher", "mpi"],
    )
    .failed();
    assert!(
        out.error_line()
            .starts_with("error: --launcher mpi needs a build with MPI"),
        "{}",
        out.stderr
    );
}

#[test]
fn processes_and_threads_do_not_mix_and_unknown_launchers_are_usage_errors() {
    let work = tempfile::tempdir().unwrap();
    let out = train_on_two(work.path(), &["--launcher", "mpi"]).failed();
    assert_eq!(
        out.error_line(),
        "error: --launcher mpi runs one device per process; --gpus 2 is for one process's threads"
    );
    let out = train_on_two(work.path(), &["--launcher", "slurm"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("--launcher slurm: expected `none` or `mpi`"),
        "{}",
        out.stderr
    );
}
