//! Helpers shared by the checkpoint, adapter and Swin unit tests: tiny backbones built the way
//! `tests/fixtures.rs` builds them (the fixture JSON's `config` + a method from a TOML
//! `type = "..."`), fixture paths, a deterministic pseudo-random source, and the labelled
//! image batches the runner tests train on.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use mona_core::config::Config;
use mona_core::methods::{TuningMethod, build_method};
use mona_core::runner::BatchSource;
use mona_core::swin::{SwinConfig, SwinTransformer};
use mona_fixtures::fixtures_dir;

/// The CPU device without autodiff (every test here is inference only).
pub fn device() -> Device {
    Device::flex()
}

/// `fixtures_dir()/name`.
pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// The `config` of fixture `name` (`NAME.json`).
pub fn fixture_config(name: &str) -> SwinConfig {
    let path = fixture(&format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("fixture json");
    serde_json::from_value(json["config"].clone()).expect("fixture config")
}

/// The fixture JSON `name` as a value.
pub fn fixture_json(name: &str) -> serde_json::Value {
    let path = fixture(&format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture json")
}

/// The method registered as `name`, built from a one-line TOML as the fixture test does.
pub fn method(name: &str) -> Arc<dyn TuningMethod> {
    let cfg = Config::from_str_at(&format!("type = \"{name}\""), "method.toml").expect("toml");
    Arc::from(build_method(&cfg.root()).expect("method"))
}

/// A backbone of `config` tuned with method `name`, fresh (lazy) parameters.
pub fn backbone(config: &SwinConfig, name: &str) -> SwinTransformer {
    SwinTransformer::new(config, method(name), &device()).expect("backbone")
}

/// The tiny Swin of `swin_mona_tiny` (embed 24, depths 2,2,2,2, heads 1,2,4,8) with `name`.
pub fn tiny(name: &str) -> SwinTransformer {
    backbone(&fixture_config("swin_mona_tiny"), name)
}

/// A float tensor from fixture data.
pub fn tensor<const D: usize>(data: &TensorData) -> Tensor<D> {
    Tensor::from_data(data.clone().convert::<f32>(), &device())
}

/// Deterministic values in [-scale, scale) (a 64-bit LCG; no RNG crate needed).
pub fn pseudo_random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            (2.0 * u - 1.0) * scale
        })
        .collect()
}

/// The outputs of `model` on `x` as data, eval mode.
pub fn outputs(model: &SwinTransformer, x: &Tensor<4>) -> Vec<TensorData> {
    model
        .forward(x.clone(), false)
        .into_iter()
        .map(|y| y.to_data())
        .collect()
}

/// A batch of the runner tests: images and their class labels.
pub type Batch = (Tensor<4>, Tensor<1, Int>);

/// Refuses a batch holding a label of -1: the toy models' stand-in for a batch a model
/// cannot take.
pub fn fail_on_label_minus_one(batch: &Batch) -> Result<(), mona_core::runner::LossError> {
    let labels = batch
        .1
        .to_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    if labels.contains(&-1) {
        return Err(mona_core::runner::LossError::new("toy model", "label -1"));
    }
    Ok(())
}

/// Labelled image batches held on the host; epoch `e` starts at batch `e` (mod their number),
/// so every epoch sees them in another order.
pub struct Source {
    pub batches: Vec<(TensorData, Vec<i64>)>,
    pub device: Device,
}

impl BatchSource<Batch> for Source {
    fn epoch_len(&self) -> usize {
        self.batches.len()
    }
    fn iter_epoch_strided<'a>(
        &'a self,
        epoch: usize,
        first: usize,
        stride: usize,
    ) -> Box<dyn Iterator<Item = Result<Batch, mona_core::runner::BoxError>> + 'a>
    where
        Batch: 'a,
    {
        let n = self.batches.len();
        Box::new((first..n).step_by(stride.max(1)).map(move |i| {
            let (img, labels) = &self.batches[(i + epoch) % n];
            Ok((
                Tensor::from_data(img.clone(), &self.device),
                Tensor::from_data(
                    TensorData::new(labels.clone(), [labels.len()]),
                    &self.device,
                ),
            ))
        }))
    }
}
