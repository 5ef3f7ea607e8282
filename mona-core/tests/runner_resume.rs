//! The runner end to end on a tiny Swin + linear head: resuming reproduces an uninterrupted
//! run bit for bit, frozen parameters never change, and a run killed while writing a
//! checkpoint resumes from the previous one; data-parallel training on two devices equals one
//! device with the double batch.

mod common;

use std::collections::BTreeMap;

use burn::module::Module;
use burn::tensor::{Device, TensorData};
use common::{Batch, Source};
use mona_core::backbone::{Backbone, build_backbone};
use mona_core::config::Config;
use mona_core::nn::Linear;
use mona_core::params::{param_data, set_trainable};
use mona_core::runner::{
    AllReduce, DataParallel, LossError, Losses, LrSchedule, Metrics, Optimizer, Resume, RunnerCfg,
    TrainModel, TrainOptions, train,
};

#[derive(Module, Debug)]
struct Toy {
    backbone: Backbone,
    head: Linear,
}

impl TrainModel for Toy {
    type Batch = Batch;
    fn losses(&self, batch: &Batch, training: bool) -> Result<Losses, LossError> {
        common::fail_on_label_minus_one(batch)?;
        let feats = self.backbone.forward(batch.0.clone(), training);
        let last = feats.into_iter().last().unwrap();
        let [b, c, h, w] = last.dims();
        let pooled = last.reshape([b, c, h * w]).mean_dim(2).reshape([b, c]);
        let logits = self.head.forward(pooled);
        let logp = burn::tensor::activation::log_softmax(logits, 1);
        let loss = logp.gather(1, batch.1.clone().reshape([b, 1])).mean().neg();
        Ok(Losses {
            total: loss.clone(),
            parts: vec![("loss_cls".into(), loss)],
        })
    }
    fn trainable(&self, key: &str) -> bool {
        match key.strip_prefix("backbone.") {
            Some(k) => self.backbone.trainable_in_training(k),
            None => true,
        }
    }
    fn batch_to_device(batch: &Batch, device: &Device) -> Option<Batch> {
        Some(Toy::forked_batch(batch, device))
    }
}

const CONFIG: &str = r#"
[model.backbone]
type = "SwinTransformer"
embed_dim = 8
depths = [2, 2]
num_heads = [1, 2]
window_size = 4
drop_path_rate = 0.2
out_indices = [1]
[model.backbone.method]
type = "METHOD"
[optimizer]
type = "AdamW"
lr = 0.01
weight_decay = 0.05
[optimizer.paramwise_cfg]
norm_decay_mult = 0.0
[optimizer_config]
grad_clip = { max_norm = 1.0 }
[lr_config]
policy = "CosineAnnealing"
min_lr_ratio = 0.01
by_epoch = false
warmup = "linear"
warmup_iters = 2
warmup_ratio = 0.1
[runner]
type = "IterBasedRunner"
max_iters = 6
[checkpoint_config]
interval = 3
[evaluation]
interval = 3
[log_config]
interval = 1
"#;

fn setup(method: &str) -> (Config, Toy, Source) {
    setup_from(&CONFIG.replace("METHOD", method))
}

fn setup_from(config: &str) -> (Config, Toy, Source) {
    let cfg = Config::from_str_at(config, "toy.toml").unwrap();
    let device = Device::flex().autodiff();
    device.seed(7);
    let backbone = build_backbone(&cfg.node("model.backbone").unwrap(), &device).unwrap();
    let head = Linear::normal(16, 3, 0.01, &device);
    let toy = Toy { backbone, head };
    let rule_model = toy.clone();
    let toy = set_trainable(toy, &|k| rule_model.trainable(k));
    // Deterministic synthetic data: 2 batches of 2 images 3x16x16.
    let batches = (0..2)
        .map(|b| {
            let values: Vec<f32> = (0..2 * 3 * 16 * 16)
                .map(|i| (((i * 37 + b * 101) % 97) as f32 / 97.0) - 0.5)
                .collect();
            (TensorData::new(values, [2, 3, 16, 16]), vec![b as i64, 2])
        })
        .collect();
    (cfg, toy, Source { batches, device })
}

/// burn's device RNG is process-global: runs of parallel tests would interleave their draws
/// (dropout, DropPath, lazy init), so the runs of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn run(
    method: &str,
    work_dir: &std::path::Path,
    resume: Resume,
    stop_after: Option<usize>,
) -> (Toy, Toy) {
    run_on(method, work_dir, resume, stop_after, 1)
}

/// A run as [`run`], data-parallel on `devices` CPU replicas (host all-reduce).
fn run_on(
    method: &str,
    work_dir: &std::path::Path,
    resume: Resume,
    stop_after: Option<usize>,
    devices: usize,
) -> (Toy, Toy) {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (cfg, toy, source) = setup(method);
    let initial = toy.clone();
    let optimizer = optimizer_for(&cfg, &toy);
    let schedule = LrSchedule::from_config(&cfg.node("lr_config").unwrap()).unwrap();
    let opts = TrainOptions {
        work_dir: work_dir.to_path_buf(),
        seed: 42,
        resume,
        runner: RunnerCfg::from_config(&cfg).unwrap(),
        config_toml: cfg.to_toml_string(),
        method: method.into(),
        stop_after,
        export_adapter: true,
        parallel: DataParallel {
            replicas: vec![source.device.clone(); devices - 1],
            all_reduce: AllReduce::Host,
        },
        process: None,
        classes: Vec::new(),
    };
    let mut evaluate = |_: &Toy| -> Result<Metrics, mona_core::runner::BoxError> {
        Ok(BTreeMap::from([("dummy".to_string(), 1.0)]))
    };
    // Materialise the lazy initial values while holding the turn.
    let _ = param_data(&initial, &|_| true);
    let (model, _) = train(toy, optimizer, &schedule, &source, &mut evaluate, &opts).unwrap();
    (initial, model)
}

fn params(m: &Toy) -> BTreeMap<String, Vec<f32>> {
    param_data(m, &|_| true)
        .into_iter()
        .map(|(k, d)| (k, d.convert::<f32>().try_into_vec().unwrap()))
        .collect()
}

/// Data-parallel runs resume exactly too: the replicas restart from the checkpoint (model
/// and optimizer state of the first device) and draw what they would have drawn.
#[test]
fn resumed_data_parallel_run_equals_uninterrupted_run() {
    let full_dir = tempfile::tempdir().unwrap();
    let (_, full) = run_on("mona", full_dir.path(), Resume::No, None, 2);
    let dir = tempfile::tempdir().unwrap();
    let _ = run_on("mona", dir.path(), Resume::No, Some(4), 2);
    assert!(dir.path().join("iter_3.safetensors").exists());
    let (_, resumed) = run_on("mona", dir.path(), Resume::Auto, None, 2);
    assert_eq!(params(&full), params(&resumed), "resume changed the result");
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let full_dir = tempfile::tempdir().unwrap();
    let (_, full) = run("mona", full_dir.path(), Resume::No, None);

    let dir = tempfile::tempdir().unwrap();
    // Killed after 4 iterations: the checkpoint of iteration 3 is the last one written.
    let (_, _) = run("mona", dir.path(), Resume::No, Some(4));
    assert!(dir.path().join("iter_3.safetensors").exists());
    assert!(!dir.path().join("iter_6.safetensors").exists());
    let (_, resumed) = run("mona", dir.path(), Resume::Auto, None);
    assert_eq!(params(&full), params(&resumed), "resume changed the result");

    let log = std::fs::read_to_string(dir.path().join("log.jsonl")).unwrap();
    let last_train = log
        .lines()
        .rfind(|l| l.contains("\"mode\":\"train\""))
        .unwrap();
    let rec: serde_json::Value = serde_json::from_str(last_train).unwrap();
    assert_eq!(rec["iter"], 6);
    assert!(rec["loss"].as_f64().unwrap().is_finite());
    assert!(dir.path().join("adapter_final.safetensors").exists());
}

#[test]
fn frozen_parameters_stay_bit_identical() {
    for method in ["mona", "lora", "bitfit"] {
        let dir = tempfile::tempdir().unwrap();
        let (initial, trained) = run(method, dir.path(), Resume::No, None);
        let (before, after) = (params(&initial), params(&trained));
        let mut changed = 0;
        for (key, value) in &before {
            if trained.trainable(key) {
                if after[key] != *value {
                    changed += 1;
                }
            } else {
                assert_eq!(after[key], *value, "{method}: frozen {key} changed");
            }
        }
        assert!(changed > 0, "{method}: nothing trained");
        assert!(
            after["head.weight"] != before["head.weight"],
            "{method}: head did not train"
        );
    }
}

#[test]
fn killed_mid_checkpoint_resumes_from_previous() {
    let dir = tempfile::tempdir().unwrap();
    run("mona", dir.path(), Resume::No, Some(4));
    // A crash while writing iteration 6 leaves a temp file; `last_checkpoint` still names
    // iteration 3.
    std::fs::write(dir.path().join(".iter_6.safetensors.tmp-999"), b"partial").unwrap();
    let pointer = std::fs::read_to_string(dir.path().join("last_checkpoint")).unwrap();
    assert_eq!(pointer.trim(), "iter_3.safetensors");
    let (_, resumed) = run("mona", dir.path(), Resume::Auto, None);
    let full_dir = tempfile::tempdir().unwrap();
    let (_, full) = run("mona", full_dir.path(), Resume::No, None);
    assert_eq!(params(&full), params(&resumed));
}

#[test]
fn two_full_runs_are_identical() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (ia, ra) = run("mona", a.path(), Resume::No, None);
    let (ib, rb) = run("mona", b.path(), Resume::No, None);
    let (pa, pb) = (params(&ia), params(&ib));
    let diff: Vec<_> = pa.keys().filter(|k| pa[*k] != pb[*k]).take(3).collect();
    assert!(diff.is_empty(), "initial differs: {diff:?}");
    let (pa, pb) = (params(&ra), params(&rb));
    let diff: Vec<_> = pa.keys().filter(|k| pa[*k] != pb[*k]).take(3).collect();
    assert!(diff.is_empty(), "trained differs: {diff:?}");
}

impl Toy {
    fn forked_batch(batch: &Batch, device: &Device) -> Batch {
        (
            batch.0.clone().to_device(device),
            batch.1.clone().to_device(device),
        )
    }
}

/// 12 synthetic images in batches of `per_batch`, labels 0..3.
fn batches_of(per_batch: usize) -> Vec<(TensorData, Vec<i64>)> {
    let all: Vec<f32> = (0..12 * 3 * 16 * 16)
        .map(|i| (((i * 37 + i / 768 * 101) % 97) as f32 / 97.0) - 0.5)
        .collect();
    let labels: Vec<i64> = (0..12).map(|i| (i * 7 % 3) as i64).collect();
    let per_image = 3 * 16 * 16;
    (0..12 / per_batch)
        .map(|b| {
            let start = b * per_batch;
            (
                TensorData::new(
                    all[start * per_image..(start + per_batch) * per_image].to_vec(),
                    [per_batch, 3, 16, 16],
                ),
                labels[start..start + per_batch].to_vec(),
            )
        })
        .collect()
}

#[test]
fn two_device_data_parallel_equals_one_device_with_the_double_batch() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // No random draws (Mona's dropout and DropPath masks are drawn per device: full
    // fine-tuning without DropPath), one epoch (the toy source rotates its batches per
    // epoch), no checkpoints.
    let config = CONFIG
        .replace("METHOD", "full")
        .replace("drop_path_rate = 0.2", "drop_path_rate = 0.0")
        .replace("max_iters = 6", "max_iters = 3")
        .replace("interval = 3", "interval = 100");
    let run_on = |devices: usize| -> (Toy, String) {
        let (cfg, toy, mut source) = setup_from(&config);
        // Materialise the lazy initial values before any replica is forked.
        let _ = param_data(&toy, &|_| true);
        source.batches = batches_of(4 / devices);
        let optimizer = optimizer_for(&cfg, &toy);
        let schedule = LrSchedule::from_config(&cfg.node("lr_config").unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let opts = dp_options(dir.path(), &cfg, "full", 42, devices, &source.device);
        let mut evaluate =
            |_: &Toy| -> Result<Metrics, mona_core::runner::BoxError> { Ok(BTreeMap::new()) };
        let (model, summary) =
            train(toy, optimizer, &schedule, &source, &mut evaluate, &opts).unwrap();
        assert_eq!(summary.iters, 3);
        // The replicas took the same steps with the same averaged gradients.
        let expected_diff = (devices > 1).then_some(0.0);
        assert_eq!(summary.replica_max_diff, expected_diff);
        let log = std::fs::read_to_string(dir.path().join("log.jsonl")).unwrap();
        (model, log)
    };
    let (one, one_log) = run_on(1);
    let (two, two_log) = run_on(2);
    let (a, b) = (params(&one), params(&two));
    let mut worst = 0.0f32;
    let mut trained = 0;
    for (key, va) in &a {
        let vb = &b[key];
        for (x, y) in va.iter().zip(vb) {
            worst = worst.max((x - y).abs());
        }
        trained += usize::from(one.trainable(key));
    }
    assert!(trained > 0);
    assert!(worst < 2e-5, "two devices differ from one by {worst:e}");
    // The logged loss is the mean over the devices: the same as the one-device loss.
    let loss = |log: &str| -> Vec<f64> {
        log.lines()
            .filter(|l| l.contains("\"mode\":\"train\""))
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let (l1, l2) = (loss(&one_log), loss(&two_log));
    assert_eq!(l1.len(), 3);
    for (x, y) in l1.iter().zip(&l2) {
        assert!((x - y).abs() < 1e-5, "loss {x} vs {y}");
    }
    // A source too short for the devices is refused with a clear message.
    let (cfg, toy, mut source) = setup_from(&config);
    source.batches = batches_of(12);
    let dir = tempfile::tempdir().unwrap();
    let opts = dp_options(dir.path(), &cfg, "mona", 42, 2, &source.device);
    assert_eq!(
        failed_run(toy, &cfg, &source, &opts),
        "data-parallel training on 2 devices needs at least 2 batches per epoch; the data gives 1"
    );
}

/// Replicas run on their own threads; with Mona's dropout and DropPath drawing masks, a
/// data-parallel run still gives the same result every time (each replica draws from its
/// own seed, whatever the threads' timing), and the replicas stay identical.
#[test]
fn data_parallel_runs_with_random_masks_are_reproducible() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let config = CONFIG
        .replace("METHOD", "mona")
        .replace("max_iters = 6", "max_iters = 3")
        .replace("interval = 3", "interval = 100");
    let run = || -> Toy {
        let (cfg, toy, mut source) = setup_from(&config);
        let _ = param_data(&toy, &|_| true);
        source.batches = batches_of(2);
        let optimizer = optimizer_for(&cfg, &toy);
        let schedule = LrSchedule::from_config(&cfg.node("lr_config").unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let opts = dp_options(dir.path(), &cfg, "mona", 7, 3, &source.device);
        let mut evaluate =
            |_: &Toy| -> Result<Metrics, mona_core::runner::BoxError> { Ok(BTreeMap::new()) };
        let (model, summary) =
            train(toy, optimizer, &schedule, &source, &mut evaluate, &opts).unwrap();
        assert_eq!(summary.iters, 3);
        assert_eq!(summary.replica_max_diff, Some(0.0));
        model
    };
    let (a, b) = (run(), run());
    assert_eq!(params(&a), params(&b), "data-parallel runs differ");
}

/// A replica that fails (here on its batch) ends the run with an error naming it and its
/// message, instead of leaving the first device waiting for its gradients.
#[test]
fn a_failing_replica_is_reported() {
    // The second batch of the epoch goes to the replica on the second device.
    assert_eq!(
        run_with_a_bad_second_batch(2),
        "data-parallel replica 1 failed: toy model: label -1"
    );
}

/// A batch the model cannot take ends a one-device run with an error naming the iteration
/// (1-based, as the logs count) and the model's message, not with a panic.
#[test]
fn a_batch_the_model_cannot_take_ends_the_run_naming_its_iteration() {
    // The first epoch takes the batches in order: the second is iteration 2.
    assert_eq!(
        run_with_a_bad_second_batch(1),
        "iteration 2: toy model: label -1"
    );
}

/// The error of a `full` run on `devices` devices whose second batch (of 2 images) holds a
/// label the toy model refuses.
fn run_with_a_bad_second_batch(devices: usize) -> String {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let config = CONFIG
        .replace("METHOD", "full")
        .replace("interval = 3", "interval = 100");
    let (cfg, toy, mut source) = setup_from(&config);
    let _ = param_data(&toy, &|_| true);
    source.batches = batches_of(2);
    source.batches[1].1[0] = -1;
    let dir = tempfile::tempdir().unwrap();
    let opts = dp_options(dir.path(), &cfg, "full", 1, devices, &source.device);
    failed_run(toy, &cfg, &source, &opts)
}

fn optimizer_for(cfg: &Config, toy: &Toy) -> Optimizer {
    Optimizer::from_config(&cfg.node("optimizer").unwrap(), toy, &|k| toy.trainable(k)).unwrap()
}

/// Options of a data-parallel run on `devices` replicas of `device` (host all-reduce).
fn dp_options(
    dir: &std::path::Path,
    cfg: &Config,
    method: &str,
    seed: u64,
    devices: usize,
    device: &Device,
) -> TrainOptions {
    TrainOptions {
        work_dir: dir.to_path_buf(),
        seed,
        resume: Resume::No,
        runner: RunnerCfg::from_config(cfg).unwrap(),
        config_toml: cfg.to_toml_string(),
        method: method.into(),
        stop_after: None,
        export_adapter: false,
        parallel: DataParallel {
            replicas: vec![device.clone(); devices - 1],
            all_reduce: AllReduce::Host,
        },
        process: None,
        classes: Vec::new(),
    }
}

/// The error message of a run expected to fail.
fn failed_run(toy: Toy, cfg: &Config, source: &Source, opts: &TrainOptions) -> String {
    let optimizer = optimizer_for(cfg, &toy);
    let mut evaluate =
        |_: &Toy| -> Result<Metrics, mona_core::runner::BoxError> { Ok(BTreeMap::new()) };
    train(
        toy,
        optimizer,
        &LrSchedule::constant(),
        source,
        &mut evaluate,
        opts,
    )
    .map(|_| ())
    .unwrap_err()
    .to_string()
}
