//! Checkpoints on `train`'s command line:
//! - a bare `--resume` continues from the work dir's `last_checkpoint` (and starts a fresh
//!   work dir from the beginning); a missing or dangling pointer beside older checkpoints
//!   stops with an error instead of starting over;
//! - the config's `resume_from` resumes like `--resume PATH` (which wins over it), and
//!   `auto_resume = true` like a bare `--resume`;
//! - `--load-from` takes our own training checkpoints, and a file that applies nothing or
//!   leaves frozen backbone parameters at their initialisation is an error unless
//!   `--partial-load` asks for it;
//! - `evaluation.save_best` keeps the best evaluation's checkpoint beside the others.

mod common;

use std::path::Path;

use burn::tensor::TensorData;
use common::{Run, run};
use mona_core::checkpoint::{StateDict, write_safetensors};
use mona_core::runner::read_checkpoint;

const DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";

/// `train DEMO` on 64 training and 32 validation images (2 batches per epoch), 2 epochs,
/// a checkpoint every epoch; `extra` goes last so a bare `--resume` can end the line.
fn train_small(data: &Path, work: &Path, extra: &[&str]) -> Run {
    let train_ann = common::demo_split(data, "train", 64);
    let val_ann = common::demo_split(data, "val", 32);
    let options = [
        format!("data.train.ann_file={train_ann}"),
        format!("data.val.ann_file={val_ann}"),
        "runner.max_epochs=2".into(),
        "checkpoint_config.interval=1".into(),
        "evaluation.interval=2".into(),
    ];
    let mut args = vec![DEMO, "--work-dir", work.to_str().unwrap(), "--cfg-options"];
    args.extend(options.iter().map(String::as_str));
    args.extend_from_slice(extra);
    run(env!("CARGO_BIN_EXE_train"), &args)
}

/// The record of `log.jsonl` that marks where a resumed run starts.
fn resume_record(work: &Path) -> Option<serde_json::Value> {
    let log = std::fs::read_to_string(work.join("log.jsonl")).unwrap();
    log.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["mode"] == "resume")
}

/// The iteration and checkpoint a resumed run started at.
fn resume_marker(work: &Path) -> Option<(u64, String)> {
    resume_record(work).map(|r| {
        let ckpt = r["checkpoint"].as_str().unwrap().to_string();
        (r["iter"].as_u64().unwrap(), ckpt)
    })
}

#[test]
fn config_resume_from_and_auto_resume_resume_the_run() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    train_small(data.path(), work.path(), &["--stop-after", "2"]).ok();
    let epoch_1 = work.path().join("epoch_1.safetensors");
    assert!(epoch_1.exists());

    // `resume_from` in the config: continues at iteration 2, from that file.
    let option = format!("resume_from={}", epoch_1.display());
    train_small(data.path(), work.path(), &["--cfg-options", &option]).ok();
    let (iter, ckpt) = resume_marker(work.path()).expect("the run resumed");
    assert_eq!((iter, ckpt), (2, epoch_1.display().to_string()));

    // A missing `resume_from` is an error naming it, not a fresh start.
    let fresh = tempfile::tempdir().unwrap();
    let missing = fresh.path().join("nope.safetensors");
    let option = format!("resume_from={}", missing.display());
    let out = train_small(data.path(), fresh.path(), &["--cfg-options", &option]).failed();
    assert!(
        out.error_line().contains(&missing.display().to_string()),
        "{}",
        out.error_line()
    );

    // `--resume PATH` wins over the config's `resume_from`.
    let cli = tempfile::tempdir().unwrap();
    train_small(
        data.path(),
        cli.path(),
        &[
            "--cfg-options",
            &option,
            "--resume",
            epoch_1.to_str().unwrap(),
        ],
    )
    .ok();
    assert_eq!(
        resume_marker(cli.path()),
        Some((2, epoch_1.display().to_string()))
    );

    // `auto_resume = true`: the newest checkpoint of the work dir, as a bare `--resume`.
    let auto = tempfile::tempdir().unwrap();
    train_small(data.path(), auto.path(), &["--stop-after", "2"]).ok();
    train_small(
        data.path(),
        auto.path(),
        &["--cfg-options", "auto_resume=true"],
    )
    .ok();
    let (iter, ckpt) = resume_marker(auto.path()).expect("the run resumed");
    assert_eq!(iter, 2);
    assert!(ckpt.ends_with("epoch_1.safetensors"), "{ckpt}");
}

#[test]
fn bare_resume_continues_from_the_last_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();

    // A fresh work dir: nothing to resume, so the run starts (and is cut after epoch 1).
    let first = train_small(data.path(), work.path(), &["--stop-after", "2", "--resume"]).ok();
    assert!(
        first.stderr.contains("--resume: no checkpoint in ")
            && first.stderr.contains("training from the start"),
        "{}",
        first.stderr
    );
    assert!(work.path().join("epoch_1.safetensors").exists());
    assert!(!work.path().join("epoch_2.safetensors").exists());

    // Bare `--resume` as the last argument: continues at iteration 2 and finishes epoch 2.
    train_small(data.path(), work.path(), &["--resume"]).ok();
    assert!(work.path().join("epoch_2.safetensors").exists());
    let marker = resume_record(work.path()).expect("log.jsonl marks where the resumed run starts");
    assert_eq!(marker["iter"], 2);
    assert_eq!(marker["epoch"], 1);
    assert!(
        marker["checkpoint"]
            .as_str()
            .unwrap()
            .ends_with("epoch_1.safetensors"),
        "{marker}"
    );
    let train_log = std::fs::read_to_string(work.path().join("train.log")).unwrap();
    assert!(
        train_log.contains("resumed from ") && train_log.contains("at iteration 2"),
        "{train_log}"
    );

    // A checkpoint of another model (another head, another batch size) says that, not
    // that the epoch length changed.
    let epoch_1 = work.path().join("epoch_1.safetensors");
    let other = tempfile::tempdir().unwrap();
    let out = train_small(
        data.path(),
        other.path(),
        &[
            "--cfg-options",
            "model.head.num_classes=12",
            "data.samples_per_gpu=16",
            "--resume",
            epoch_1.to_str().unwrap(),
        ],
    )
    .failed();
    assert!(
        out.error_line().starts_with(&format!(
            "error: resume from {}: the checkpoint does not fit the model: 0 missing, 2 mismatched",
            epoch_1.display()
        )),
        "{}",
        out.error_line()
    );

    // Without `last_checkpoint`, the checkpoints beside it are named, nothing is trained.
    std::fs::remove_file(work.path().join("last_checkpoint")).unwrap();
    let before = std::fs::metadata(work.path().join("epoch_2.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    let out = train_small(data.path(), work.path(), &["--resume"]).failed();
    assert_eq!(
        out.error_line(),
        format!(
            "error: {}: missing, but the work dir holds checkpoints (epoch_1.safetensors, \
             epoch_2.safetensors); resume from one with --resume PATH",
            work.path().join("last_checkpoint").display()
        )
    );
    let after = std::fs::metadata(work.path().join("epoch_2.safetensors"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        before, after,
        "a refused resume must not touch the checkpoints"
    );

    // A pointer to a file that is gone.
    std::fs::write(work.path().join("last_checkpoint"), "epoch_9.safetensors\n").unwrap();
    let out = train_small(data.path(), work.path(), &["--resume"]).failed();
    assert_eq!(
        out.error_line(),
        format!(
            "error: {}: names epoch_9.safetensors, which is not a file in the work dir \
             (checkpoints there: epoch_1.safetensors, epoch_2.safetensors); resume from one \
             with --resume PATH",
            work.path().join("last_checkpoint").display()
        )
    );

    // An empty pointer.
    std::fs::write(work.path().join("last_checkpoint"), "").unwrap();
    let out = train_small(data.path(), work.path(), &["--resume"]).failed();
    assert!(
        out.error_line()
            .ends_with("last_checkpoint: does not name one checkpoint file (read \"\"); resume from one with --resume PATH"),
        "{}",
        out.error_line()
    );
}

/// The frozen backbone tensors (everything of `backbone.` but the Mona modules, whose
/// official keys hold `my_module`) of a file.
fn frozen_backbone(path: &Path) -> Vec<(String, TensorData)> {
    StateDict::read(path)
        .unwrap()
        .tensors
        .into_iter()
        .filter(|(k, _)| k.starts_with("backbone.") && !k.contains("my_module"))
        .collect()
}

#[test]
fn load_from_takes_our_checkpoints_and_refuses_partial_loads() {
    let data = tempfile::tempdir().unwrap();
    let source = tempfile::tempdir().unwrap();
    train_small(data.path(), source.path(), &["--stop-after", "2"]).ok();
    let ckpt = source.path().join("epoch_1.safetensors");
    let frozen = frozen_backbone(&ckpt);
    assert!(frozen.len() > 20, "{} frozen tensors", frozen.len());

    // Another seed initialises another backbone; the frozen part must come from the file
    // (and stays as loaded, since it does not train).
    let work = tempfile::tempdir().unwrap();
    let ckpt_arg = ckpt.to_str().unwrap();
    train_small(
        data.path(),
        work.path(),
        &["--stop-after", "2", "--seed", "1", "--load-from", ckpt_arg],
    )
    .ok();
    assert_eq!(
        frozen_backbone(&work.path().join("epoch_1.safetensors")),
        frozen
    );

    // convert-checkpoint through the config's backbone writes the whole backbone of it.
    let converted = data.path().join("backbone.safetensors");
    run(
        env!("CARGO_BIN_EXE_convert-checkpoint"),
        &[ckpt_arg, converted.to_str().unwrap(), "--config", DEMO],
    )
    .ok();
    let backbone = StateDict::read(&converted).unwrap().tensors;
    let source_backbone = StateDict::read(&ckpt)
        .unwrap()
        .with_prefix_stripped("backbone.");
    assert_eq!(backbone.len(), source_backbone.len());
    assert_eq!(backbone, source_backbone);

    // A file none of whose keys is a parameter of the model.
    let stray = data.path().join("stray.safetensors");
    let tensor = TensorData::new(vec![0f32; 4], [2, 2]);
    write_safetensors(
        &stray,
        &[("decoder.layer.weight".into(), tensor)],
        Default::default(),
    )
    .unwrap();
    let stray_out = data.path().join("nothing.safetensors");
    let out = run(
        env!("CARGO_BIN_EXE_convert-checkpoint"),
        &[
            stray.to_str().unwrap(),
            stray_out.to_str().unwrap(),
            "--config",
            DEMO,
        ],
    )
    .failed();
    assert!(
        out.error_line().starts_with(&format!(
            "error: {}: no tensor maps onto the backbone of {DEMO} (the file's keys look like \
             `decoder.layer.weight`, the backbone's like `",
            stray.display()
        )) && out.error_line().ends_with("`); nothing written"),
        "{}",
        out.error_line()
    );
    assert!(!stray_out.exists());
    let out = train_small(
        data.path(),
        work.path(),
        &["--load-from", stray.to_str().unwrap()],
    )
    .failed();
    let line = out.error_line();
    assert!(
        line.starts_with(&format!(
            "error: load_from {}: no tensor of the file names a parameter of the model (unused: `backbone.decoder.layer.weight`; the model has `backbone.patch_embed.proj.weight`, `backbone.",
            stray.display()
        )) && line.ends_with("`); pass --partial-load to train with what applies"),
        "{line}"
    );

    // One frozen tensor of the checkpoint: the rest of the frozen backbone would stay random.
    let partial = data.path().join("partial.safetensors");
    write_safetensors(&partial, &frozen[..1], Default::default()).unwrap();
    let out = train_small(
        data.path(),
        work.path(),
        &["--load-from", partial.to_str().unwrap()],
    )
    .failed();
    let line = out.error_line();
    assert!(
        line.starts_with(&format!(
            "error: load_from {}: {} frozen backbone parameter(s) are not in the file and would \
             stay at their random initialisation (first: `backbone.",
            partial.display(),
            frozen.len() - 1,
        )) && line.ends_with("`); pass --partial-load to train with what applies"),
        "{line}"
    );
    // ... unless asked for.
    let partial_work = tempfile::tempdir().unwrap();
    train_small(
        data.path(),
        partial_work.path(),
        &[
            "--stop-after",
            "1",
            "--partial-load",
            "--load-from",
            partial.to_str().unwrap(),
        ],
    )
    .ok();
}

#[test]
fn one_train_per_work_dir() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let lock = work.path().join("train.lock");

    // A live holder (this test process): refused, nothing written.
    let holder = format!("pid {} on {}", std::process::id(), host.trim());
    std::fs::write(&lock, format!("{holder}\n")).unwrap();
    let out = train_small(data.path(), work.path(), &[]).failed();
    assert_eq!(
        out.error_line(),
        format!(
            "error: work dir {} is in use by another train process ({holder}); wait for it to \
             end or choose another --work-dir",
            work.path().display()
        )
    );
    assert!(!work.path().join("config.toml").exists());
    assert!(!work.path().join("log.jsonl").exists());

    // A holder that is gone: taken over with a warning; the lock is released at the end.
    std::fs::write(&lock, format!("pid 4000000000 on {}\n", host.trim())).unwrap();
    let out = train_small(data.path(), work.path(), &["--stop-after", "1"]).ok();
    assert!(
        out.stderr
            .contains("left by a train process that is gone (pid 4000000000 on"),
        "{}",
        out.stderr
    );
    assert!(work.path().join("log.jsonl").exists());
    assert!(!lock.exists(), "the lock is removed when train ends");
}

#[test]
fn a_checkpoint_that_cannot_be_written_says_so() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    // A non-empty folder where the first checkpoint goes: the rename onto it fails.
    let blocked = work.path().join("epoch_1.safetensors");
    std::fs::create_dir_all(blocked.join("keep")).unwrap();
    let out = train_small(data.path(), work.path(), &[]).failed();
    assert!(
        out.error_line()
            .starts_with(&format!("error: {}: cannot write: ", blocked.display())),
        "{}",
        out.error_line()
    );
    assert!(blocked.join("keep").is_dir(), "the folder is left alone");
}

#[test]
fn save_best_keeps_the_checkpoint_of_the_best_evaluation_only() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    train_small(
        data.path(),
        work.path(),
        &[
            "runner.max_epochs=3",
            "evaluation.interval=1",
            "evaluation.save_best=auto",
        ],
    )
    .ok();
    // The first evaluation with the highest top-1 (a tie is no improvement, as in mmcv).
    let log = std::fs::read_to_string(work.path().join("log.jsonl")).unwrap();
    let mut best: Option<(u64, f64)> = None;
    for record in log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    {
        if record["mode"] == "val" {
            let score = record["accuracy_top-1"].as_f64().unwrap();
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((record["epoch"].as_u64().unwrap(), score));
            }
        }
    }
    let (epoch, score) = best.expect("three evaluations");
    let mut kept: Vec<String> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("best_"))
        .collect();
    kept.sort();
    let file = format!("best_accuracy_top-1_epoch_{epoch}.safetensors");
    assert_eq!(kept, vec![file.clone()]);
    let best_meta = read_checkpoint(&work.path().join(&file)).unwrap().meta;
    assert_eq!(best_meta.epoch as u64, epoch);
    let recorded = best_meta
        .best
        .expect("the best score in the best checkpoint");
    assert_eq!(
        (recorded.metric.as_str(), recorded.score),
        ("accuracy_top-1", score)
    );
    // The last checkpoint carries it too, so a resumed run compares against it.
    let last = read_checkpoint(&work.path().join("epoch_3.safetensors")).unwrap();
    assert_eq!(last.meta.best.map(|b| b.file), Some(file));
    // `last_checkpoint` still names the newest regular checkpoint.
    let pointer = std::fs::read_to_string(work.path().join("last_checkpoint")).unwrap();
    assert_eq!(pointer.trim(), "epoch_3.safetensors");
}

#[test]
fn save_best_with_an_unknown_rule_is_an_error_naming_the_key() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let out = train_small(
        data.path(),
        work.path(),
        &["evaluation.save_best=auto", "evaluation.rule=bigger"],
    )
    .failed();
    let line = out.error_line();
    assert!(line.contains("evaluation.rule"), "{line}");
    assert!(
        line.contains("rule must be \"greater\" or \"less\", not \"bigger\""),
        "{line}"
    );
}
