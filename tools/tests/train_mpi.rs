//! `train --launcher mpi` and `test --launcher mpi` under `mpirun -np 2` (a `--features mpi`
//! build, Open MPI installed): two processes train what two threads (`--gpus 2`) and one
//! process with the whole batch train; only rank 0 writes; a killed rank ends the job, and its
//! last checkpoint resumes on one process; a sharded test reports one process's metrics.
//! `.ci/run` runs these with `cargo test -p mona-tools --features mpi`.
#![cfg(feature = "mpi")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{demo_split, run, run_logging, workspace};
use mona_core::checkpoint::StateDict;

const DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";

/// The demo on 64 training images, without dropout or DropPath (whose draws depend on how a
/// batch is split), evaluated and saved every epoch.
fn options(split: &str, per_gpu: usize, epochs: usize) -> Vec<String> {
    vec![
        format!("data.train.ann_file={split}"),
        format!("data.samples_per_gpu={per_gpu}"),
        format!("runner.max_epochs={epochs}"),
        "model.backbone.drop_path_rate=0.0".into(),
        "model.backbone.method.dropout=0.0".into(),
        "evaluation.interval=1".into(),
        "checkpoint_config.interval=1".into(),
    ]
}

fn train_args<'a>(
    config: &'a str,
    work: &'a Path,
    extra: &[&'a str],
    opts: &'a [String],
) -> Vec<&'a str> {
    let mut args = vec![config, "--work-dir", work.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push("--cfg-options");
    args.extend(opts.iter().map(String::as_str));
    args
}

/// `mpirun -np 2 train ARGS --launcher mpi` from the workspace root.
fn mpirun(args: &[&str]) -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(env!("CARGO_BIN_EXE_train"))
        .args(args)
        .args(["--launcher", "mpi"])
        .env("RUST_LOG", "warn")
        .current_dir(workspace());
    cmd
}

/// The trainable weights `a` (an adapter file's tensors) equal `b` up to summation order: the
/// whole set to 1e-5 relative in the L2 norm (`‖a − b‖ ≤ 1e-5·‖b‖`, as `numpy.linalg.norm`
/// compares), each tensor to 1e-4 (a small tensor whose gradient sums terms that nearly
/// cancel keeps less of its precision). Training with another model (plain BN instead of
/// SyncBN, say) misses both by orders of magnitude.
fn assert_close(
    a: &std::collections::BTreeMap<String, Vec<f32>>,
    b: &std::collections::BTreeMap<String, Vec<f32>>,
) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let sq = |v: &mut dyn Iterator<Item = f64>| v.map(|e| e * e).sum::<f64>();
    let (mut all_diff, mut all_norm) = (0.0, 0.0);
    for (k, x) in a {
        let y = &b[k];
        let diff = sq(&mut x.iter().zip(y).map(|(p, q)| f64::from(p - q)));
        let norm = sq(&mut y.iter().map(|q| f64::from(*q)));
        assert!(
            diff.sqrt() <= 1e-4 * norm.sqrt().max(1e-6),
            "{k}: ‖a − b‖ = {:e}, ‖b‖ = {:e}",
            diff.sqrt(),
            norm.sqrt()
        );
        all_diff += diff;
        all_norm += norm;
    }
    let (d, n) = (all_diff.sqrt(), all_norm.sqrt());
    assert!(
        d <= 1e-5 * n,
        "trainable weights: ‖a − b‖ = {d:e}, ‖b‖ = {n:e}"
    );
}

/// `mpirun -np 2 train ARGS --launcher mpi`, which must succeed; its stdout.
fn mpirun_ok(args: &[&str]) -> String {
    let out = mpirun(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `log.jsonl` without what measures the machine, and without the thread replicas' record.
fn log_records(work: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(work.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["mode"] != "replicas")
        .map(|mut r| {
            for k in ["time", "data_time", "memory"] {
                r.as_object_mut().unwrap().remove(k);
            }
            r
        })
        .collect()
}

fn tensors(path: PathBuf) -> std::collections::BTreeMap<String, Vec<f32>> {
    StateDict::read(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .tensors
        .into_iter()
        .map(|(k, v)| (k, v.convert::<f32>().try_into_vec::<f32>().unwrap()))
        .collect()
}

fn metric_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.contains(": ")).collect()
}

#[test]
fn two_processes_train_what_two_threads_and_one_process_train() {
    let dir = tempfile::tempdir().unwrap();
    let split = demo_split(dir.path(), "train", 64);
    let (procs, threads, one) = (
        dir.path().join("procs"),
        dir.path().join("threads"),
        dir.path().join("one"),
    );
    let half = options(&split, 16, 2);
    let mut job = mpirun(&train_args(DEMO, &procs, &[], &half));
    let out = job.env_remove("RUST_LOG").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // rank 1 logs errors only, as mmcv's loggers on the other ranks
    assert_eq!(
        stderr.matches("Set random seed to 0").count(),
        1,
        "{stderr}"
    );
    let by_threads = run(
        env!("CARGO_BIN_EXE_train"),
        &train_args(DEMO, &threads, &["--gpus", "2"], &half),
    )
    .ok();
    let whole = options(&split, 32, 2);
    let by_one = run(
        env!("CARGO_BIN_EXE_train"),
        &train_args(DEMO, &one, &[], &whole),
    )
    .ok();

    // only rank 0 prints and writes; it prints what the threads print
    assert_eq!(stdout.matches("accuracy_top-1: ").count(), 1, "{stdout}");
    assert_eq!(metric_lines(&stdout), metric_lines(&by_threads.stdout));
    assert_eq!(metric_lines(&stdout), metric_lines(&by_one.stdout));
    // two processes are two threads to the bit: the same batches, seeds and sums
    assert_eq!(log_records(&procs), log_records(&threads));
    let ckpt = |w: &Path| tensors(w.join("epoch_2.safetensors"));
    assert!(
        ckpt(&procs) == ckpt(&threads),
        "the processes' weights differ from the threads'"
    );
    // and one process with the whole batch, up to summation order
    let adapter = |w: &Path| tensors(w.join("adapter_final.safetensors"));
    assert_close(&adapter(&procs), &adapter(&one));
}

#[test]
fn an_uneven_epoch_is_padded_alike_by_processes_and_threads() {
    // 41 images, batches of 16 on 2 devices: padded to 42, iterations of 16 + 16 and 5 + 5
    let dir = tempfile::tempdir().unwrap();
    let split = demo_split(dir.path(), "train", 41);
    let (procs, threads) = (dir.path().join("procs"), dir.path().join("threads"));
    let opts = options(&split, 16, 1);
    mpirun_ok(&train_args(DEMO, &procs, &[], &opts));
    run(
        env!("CARGO_BIN_EXE_train"),
        &train_args(DEMO, &threads, &["--gpus", "2"], &opts),
    )
    .ok();
    let records = log_records(&procs);
    assert_eq!(records, log_records(&threads));
    let val = records.iter().find(|r| r["mode"] == "val").unwrap();
    assert_eq!(val["iter"], 2, "{val}");
    let ckpt = |w: &Path| tensors(w.join("epoch_1.safetensors"));
    assert!(ckpt(&procs) == ckpt(&threads));
}

const SEG_DEMO: &str = "configs/demo/seg_demo_swin_mona_upernet.toml";

/// The seg demo with SyncBN in its heads (as the official ADE20K configs), without dropout
/// or DropPath, for 2 iterations (Adam's steps amplify summation-order rounding with each
/// iteration).
fn sync_bn_seg(per_gpu: usize) -> Vec<String> {
    [
        "model.decode_head.norm_cfg.type=SyncBN",
        "model.auxiliary_head.norm_cfg.type=SyncBN",
        "model.backbone.drop_path_rate=0.0",
        "model.backbone.method.dropout=0.0",
        "model.decode_head.dropout_ratio=0.0",
        "model.auxiliary_head.dropout_ratio=0.0",
        "runner.max_iters=2",
        "evaluation.interval=2",
        "checkpoint_config.interval=2",
        "log_config.interval=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("data.samples_per_gpu={per_gpu}")])
    .collect()
}

#[test]
fn sync_bn_statistics_span_the_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (procs, threads, one) = (
        dir.path().join("procs"),
        dir.path().join("threads"),
        dir.path().join("one"),
    );
    let half = sync_bn_seg(2);
    let stdout = mpirun_ok(&train_args(SEG_DEMO, &procs, &[], &half));
    let by_threads = run(
        env!("CARGO_BIN_EXE_train"),
        &train_args(SEG_DEMO, &threads, &["--gpus", "2"], &half),
    )
    .ok();
    let whole = sync_bn_seg(4);
    let by_one = run(
        env!("CARGO_BIN_EXE_train"),
        &train_args(SEG_DEMO, &one, &[], &whole),
    )
    .ok();
    // the processes' SyncBN is the threads' to the bit (the same sums in the same order)
    assert_eq!(log_records(&procs), log_records(&threads));
    assert_eq!(metric_lines(&stdout), metric_lines(&by_threads.stdout));
    let ckpt = |w: &Path| tensors(w.join("iter_2.safetensors"));
    assert!(ckpt(&procs) == ckpt(&threads));
    // and one process with the double batch, up to summation order
    let adapter = |w: &Path| tensors(w.join("adapter_final.safetensors"));
    assert_close(&adapter(&procs), &adapter(&one));
    assert_eq!(metric_lines(&stdout), metric_lines(&by_one.stdout));
}

/// The pid of rank `rank` among the processes whose command line names `work`.
fn rank_pid(work: &Path, rank: usize) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        let has =
            |hay: &[u8], needle: &str| hay.split(|b| *b == 0).any(|part| part == needle.as_bytes());
        if has(&cmdline, work.to_str().unwrap())
            && has(&cmdline, "--launcher")
            && has(&environ, &format!("OMPI_COMM_WORLD_RANK={rank}"))
        {
            return Some(pid);
        }
    }
    None
}

#[test]
fn a_killed_rank_ends_the_job_and_its_last_checkpoint_resumes_on_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let split = demo_split(dir.path(), "train", 64);
    let work = dir.path().join("work");
    let long = options(&split, 16, 200);
    let job = mpirun(&train_args(DEMO, &work, &[], &long))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !work.join("epoch_1.safetensors").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint after 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = rank_pid(&work, 1).expect("rank 1 is running");
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    let killed = Instant::now();
    let out = job.wait_with_output().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(120),
        "the job outlived its rank by {:?}",
        killed.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("rank 1"), "{stderr}");

    // the last checkpoint is whole, and the same global batch resumes on one process
    let last = std::fs::read_to_string(work.join("last_checkpoint")).unwrap();
    let last = work.join(last.trim());
    let done = tensors(last.clone()).len();
    assert!(done > 0);
    let epoch: usize = last
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("epoch_")
        .parse()
        .unwrap();
    let resume = options(&split, 32, epoch + 1);
    let resumed = run(
        env!("CARGO_BIN_EXE_train"),
        &train_args(DEMO, &work, &["--resume"], &resume),
    )
    .ok();
    assert!(
        resumed.stdout.contains("accuracy_top-1: "),
        "{}",
        resumed.stdout
    );
    assert!(
        work.join(format!("epoch_{}.safetensors", epoch + 1))
            .exists()
    );
}

#[test]
fn a_collective_past_its_timeout_aborts_the_job_naming_the_rank() {
    let dir = tempfile::tempdir().unwrap();
    let split = demo_split(dir.path(), "train", 64);
    let work = dir.path().join("work");
    // 1 ms: the first exchange waits longer than that for the slower rank to start
    let mut opts = options(&split, 16, 1);
    opts.push("dist_params.timeout=0.001".into());
    let out = mpirun(&train_args(DEMO, &work, &[], &opts))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error: rank "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.ends_with("did not complete within 1ms: another rank died or hangs; aborting the job"),
        "{line}"
    );
}

#[test]
fn an_epoch_of_two_processes_resumes_on_one_with_its_own_batch() {
    let dir = tempfile::tempdir().unwrap();
    let split = demo_split(dir.path(), "train", 64);
    let work = dir.path().join("work");
    // 2 processes × 16: 2 iterations per epoch
    mpirun_ok(&train_args(DEMO, &work, &[], &options(&split, 16, 1)));
    // one process × 16: 4 iterations per epoch, from the start of epoch 2
    let alone = options(&split, 16, 2);
    let resumed = run_logging(
        env!("CARGO_BIN_EXE_train"),
        &train_args(DEMO, &work, &["--resume"], &alone),
        "info",
    )
    .ok();
    assert!(
        resumed
            .stderr
            .contains("(written with 2 batches per epoch, now 4) at epoch 1, iteration 4"),
        "{}",
        resumed.stderr
    );
    let meta = StateDict::read_raw(work.join("epoch_2.safetensors"))
        .unwrap()
        .metadata;
    let meta: serde_json::Value = serde_json::from_str(&meta["meta"]).unwrap();
    assert_eq!(
        (meta["iter"].as_u64(), meta["epoch"].as_u64()),
        (Some(8), Some(2))
    );
}

/// `mpirun -np 2 test ARGS --launcher mpi` from the workspace root.
fn mpirun_test(args: &[&str]) -> std::process::Output {
    Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .arg(env!("CARGO_BIN_EXE_test"))
        .args(args)
        .args(["--launcher", "mpi"])
        .env("RUST_LOG", "warn")
        .current_dir(workspace())
        .output()
        .unwrap()
}

#[test]
fn a_sharded_test_reports_the_single_process_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let opts: Vec<String> = [
        "runner.max_iters=8",
        "evaluation.interval=8",
        "checkpoint_config.interval=8",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run(
        env!("CARGO_BIN_EXE_train"),
        &train_args(SEG_DEMO, &work, &[], &opts),
    )
    .ok();
    let ckpt = work.join("iter_8.safetensors");
    let ckpt = ckpt.to_str().unwrap();
    for extra in [&[][..], &["--aug-test"][..]] {
        let (one_out, procs_out) = (dir.path().join("one.json"), dir.path().join("procs.json"));
        let mut args = vec![SEG_DEMO, ckpt, "--out", one_out.to_str().unwrap()];
        args.extend_from_slice(extra);
        let alone = run(env!("CARGO_BIN_EXE_test"), &args).ok();
        args[3] = procs_out.to_str().unwrap();
        let sharded = mpirun_test(&args);
        let stdout = String::from_utf8_lossy(&sharded.stdout);
        assert!(
            sharded.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&sharded.stderr)
        );
        // every image once, the areas summed: exactly the metrics of one process
        assert!(stdout.contains("mIoU: "), "{stdout}");
        assert_eq!(stdout, alone.stdout, "{extra:?}");
        assert_eq!(
            std::fs::read_to_string(&procs_out).unwrap(),
            std::fs::read_to_string(&one_out).unwrap()
        );
    }
}

const DET_DEMO: &str = "configs/demo/det_demo_swin_mona_retinanet.toml";
const MASK_DEMO: &str = "configs/demo/mask_demo_swin_mona_cascade.toml";

/// The files of `dir` (drawings of a `--show-dir`) with their bytes.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// A config, its training options, the test's options, and the `--out` files besides the one
/// named.
type Case<'a> = (&'a str, Vec<&'a str>, &'a [&'a str], &'a [&'a str]);

#[test]
fn sharded_classification_and_detection_tests_equal_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let split = demo_split(dir.path(), "train", 32);
    let cls_train = format!("data.train.ann_file={split}");
    let cases: [Case; 4] = [
        // the test set's 400 images in 12 batches of 32 and a last one of 16: rank 0 of 2
        // takes batches 0, 2, ..., 12, rank 1 the others (mmdet's `--gpu-collect` accepted)
        (
            DEMO,
            vec![&cls_train, "runner.max_epochs=1"],
            &["--gpu-collect"],
            &[],
        ),
        (DET_DEMO, vec!["runner.max_epochs=1"], &[], &[]),
        (DET_DEMO, vec!["runner.max_epochs=1"], &["--aug-test"], &[]),
        (MASK_DEMO, vec!["runner.max_epochs=1"], &[], &["segm.json"]),
    ];
    let mut trained = std::collections::BTreeMap::new();
    for (i, (config, train_opts, test_opts, more_out)) in cases.iter().enumerate() {
        let work = dir.path().join(format!("work{i}"));
        let ckpt = trained
            .entry((config.to_string(), train_opts.clone()))
            .or_insert_with(|| {
                let mut opts = train_opts.clone();
                opts.extend(["evaluation.interval=100", "checkpoint_config.interval=1"]);
                common::train_into(config, &work, &opts);
                work.join("epoch_1.safetensors")
            })
            .to_str()
            .unwrap()
            .to_string();
        let case = |who: &str| {
            let out = dir.path().join(format!("{who}{i}.json"));
            let show = dir.path().join(format!("{who}{i}-show"));
            let mut args = vec![config.to_string(), ckpt.clone()];
            args.extend(["--out".into(), out.to_str().unwrap().to_string()]);
            if *config != DEMO {
                args.extend(["--show-dir".into(), show.to_str().unwrap().to_string()]);
            }
            args.extend(test_opts.iter().map(|s| s.to_string()));
            (args, out, show)
        };
        let (args, one_out, one_show) = case("one");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let alone = run(env!("CARGO_BIN_EXE_test"), &args).ok();
        let (args, procs_out, procs_show) = case("procs");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sharded = mpirun_test(&args);
        let stdout = String::from_utf8_lossy(&sharded.stdout);
        assert!(
            sharded.status.success(),
            "{config} {test_opts:?}: {stdout}\n{}",
            String::from_utf8_lossy(&sharded.stderr)
        );
        // every image once, gathered on rank 0 in order: one process's metrics and files
        assert!(metric_lines(&stdout).len() >= 2, "{stdout}");
        assert_eq!(stdout, alone.stdout, "{config} {test_opts:?}");
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(&procs_out), read(&one_out), "{config} {test_opts:?}");
        // records of many images: the classifier's 400, the detectors' boxes
        let key = if *config == DEMO {
            "pred_label"
        } else {
            "bbox"
        };
        let records = read(&one_out).matches(key).count();
        assert!(records >= 100, "{config}: {records} records");
        for ext in *more_out {
            let (p, o) = (procs_out.with_extension(ext), one_out.with_extension(ext));
            assert!(read(&p).len() > 2, "{}", p.display());
            assert_eq!(read(&p), read(&o), "{config}: {ext}");
        }
        // each rank drew its own images: together, the drawings of one process
        if *config != DEMO {
            let drawn = files(&procs_show);
            assert_eq!(drawn.len(), files(&one_show).len());
            assert!(drawn == files(&one_show), "{config}: --show-dir");
        }
    }
}
