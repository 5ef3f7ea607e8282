//! What the detection end-to-end tests share: the repository root and the shipped demo
//! configs with their data roots made absolute.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mona_core::config::Config;
use mona_core::task::{TestArgs, TrainArgs};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `configs/demo/<name>.toml` reading `data/<data>` (train through a `RepeatDataset`), with
/// `extra` `--cfg-options`.
pub fn demo_config(name: &str, data: &str, extra: &[String]) -> Config {
    let mut cfg = Config::from_file(root().join(format!("configs/demo/{name}.toml")))
        .unwrap_or_else(|e| panic!("{e}"));
    let data = root().join("data").join(data);
    let mut opts: Vec<String> = ["train.dataset", "val", "test"]
        .iter()
        .map(|s| format!("data.{s}.data_root={}/", data.display()))
        .collect();
    opts.extend(extra.iter().cloned());
    cfg.apply_options(&opts).unwrap_or_else(|e| panic!("{e}"));
    cfg
}

/// A fresh CPU training run into `work_dir` (seed 0, validation on, no stop).
pub fn train_args(work_dir: &Path) -> TrainArgs {
    TrainArgs::new(work_dir, Device::flex())
}

/// `test` of `checkpoint` on the CPU with the config's metrics, writing `out` and drawings
/// into `show_dir`.
pub fn test_args(checkpoint: PathBuf, out: PathBuf, show_dir: PathBuf) -> TestArgs {
    TestArgs {
        checkpoint,
        load_from: None,
        metrics: vec![],
        out: Some(out),
        show_dir: Some(show_dir),
        show_score_thr: mona_det::visualize::SHOW_SCORE_THR,
        format_only: false,
        eval_options: Default::default(),
        aug_test: false,
        device: Device::flex(),
        process: None,
    }
}

/// The metrics of the model `cfg` builds before any training: seed 0 on the CPU, the same
/// initialisation training starts from.
pub fn untrained_metrics<M: mona_det::detector::Detector>(
    cfg: &Config,
    val: &mona_det::data::DetDataset,
    metrics: &[String],
) -> mona_core::runner::Metrics {
    let device = Device::flex();
    device.seed(0);
    let untrained: M = mona_det::task::build_model(cfg, &device).unwrap();
    let views = mona_det::tta::DetTestViews::build(
        &cfg.node("data.val.pipeline").unwrap(),
        mona_data::transforms::TtaMode::Config,
    )
    .unwrap();
    mona_det::evaluation::evaluate(
        &untrained,
        val,
        &views,
        &device,
        metrics,
        &Default::default(),
        None,
    )
    .unwrap()
}
