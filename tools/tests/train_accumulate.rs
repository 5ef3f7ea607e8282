//! Gradient accumulation (`optimizer_config.cumulative_iters`, mmcv's
//! `GradientCumulativeOptimizerHook`): batch 1 accumulated over 2 iterations trains the
//! same weights as batch 2, on the classification demo (no BatchNorm), with dropout,
//! DropPath and the random flip off and a fixed learning rate so that the two runs see the
//! same samples and rates.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::TensorData;
use common::{run, write};
use mona_core::runner::read_checkpoint;

/// The demo without randomness in training: no flip, no dropout or DropPath, a fixed LR.
fn deterministic_config(dir: &Path) -> String {
    let base = common::workspace().join("configs/demo/fashion_mnist_swin_mona.toml");
    let train_ann = common::demo_split(dir, "train", 32);
    let val_ann = common::demo_split(dir, "val", 8);
    let data = common::workspace().join("data/fashion-mnist-mini");
    write(
        dir,
        "accumulate.toml",
        &format!(
            r#"_base_ = "{base}"

[model.backbone]
drop_path_rate = 0.0

[model.backbone.method]
dropout = 0.0

[data.train]
data_prefix = "{data}"
ann_file = "{train_ann}"
pipeline = [
    {{ type = "LoadImageFromFile" }},
    {{ type = "Resize", size = [32, 32] }},
    {{ type = "Normalize", mean = [72.94, 72.94, 72.94], std = [90.02, 90.02, 90.02], to_rgb = false }},
    {{ type = "ImageToTensor", keys = ["img"] }},
    {{ type = "ToTensor", keys = ["gt_label"] }},
    {{ type = "Collect", keys = ["img", "gt_label"] }},
]

[data.val]
data_prefix = "{data}"
ann_file = "{val_ann}"

[lr_config]
_delete_ = true
policy = "fixed"

[runner]
max_epochs = 1

[evaluation]
interval = 1
"#,
            base = base.display(),
            data = data.display(),
        ),
    )
}

/// Trains `config` with `options` into `work` and returns the final checkpoint's tensors.
fn train(config: &str, work: &Path, options: &[&str]) -> BTreeMap<String, TensorData> {
    common::train_into(config, work, options);
    read_checkpoint(&work.join("epoch_1.safetensors"))
        .unwrap()
        .model
        .tensors
}

/// The largest difference between two checkpoints' tensors, relative to the tensor's
/// largest value.
fn worst_difference(a: &BTreeMap<String, TensorData>, b: &BTreeMap<String, TensorData>) -> f32 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .map(|(key, x)| {
            let x = x.clone().convert::<f32>().try_into_vec::<f32>().unwrap();
            let y = b[key]
                .clone()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap();
            let scale = y.iter().fold(1e-12f32, |m, v| m.max(v.abs()));
            x.iter()
                .zip(&y)
                .map(|(p, q)| (p - q).abs() / scale)
                .fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

#[test]
fn batch_one_accumulated_twice_trains_as_batch_two() {
    let dir = tempfile::tempdir().unwrap();
    let config = deterministic_config(dir.path());
    let whole = train(&config, &dir.path().join("b2"), &["data.samples_per_gpu=2"]);
    let accumulated = train(
        &config,
        &dir.path().join("b1x2"),
        &[
            "data.samples_per_gpu=1",
            "optimizer_config.cumulative_iters=2",
        ],
    );
    let stepwise = train(&config, &dir.path().join("b1"), &["data.samples_per_gpu=1"]);
    let same = worst_difference(&accumulated, &whole);
    assert!(same < 1e-5, "accumulated vs batch 2: {same:e}");
    // Without accumulation the same samples give other weights: the check has teeth.
    let other = worst_difference(&stepwise, &whole);
    assert!(other > 1e-3, "batch 1 vs batch 2: {other:e}");
}

#[test]
fn zero_cumulative_iters_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = deterministic_config(dir.path());
    let work = dir.path().join("w");
    let out = run(
        env!("CARGO_BIN_EXE_train"),
        &[
            &config,
            "--work-dir",
            work.to_str().unwrap(),
            "--cfg-options",
            "optimizer_config.cumulative_iters=0",
        ],
    )
    .failed();
    let line = out.error_line();
    assert!(line.contains("optimizer_config.cumulative_iters"), "{line}");
    assert!(line.contains("must be at least 1"), "{line}");
}
