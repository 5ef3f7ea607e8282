//! CPU benchmark of the classification issue: one training step (forward, backward, AdamW on
//! the trainable set) of Swin-T + Mona at batch 2, 224×224, and one inference batch.
//!
//! `cargo bench -p mona-cls --bench swin_mona_step [-- --steps N --batch B --size S]`
//!
//! Prints one JSON line per case. The reference on the same 2-core machine (PyTorch 2.15,
//! 2 threads, official code): 438.9 ms per training step (4.6 img/s), 134.7 ms per
//! inference batch.

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use mona_cls::ImageClassifier;
use mona_core::config::Config;
use mona_core::params::{param_data, set_trainable};
use mona_core::runner::Optimizer;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CONFIG: &str = r#"
[model]
type = "ImageClassifier"
[model.backbone]
type = "SwinTransformer"
arch = "swin_t"
drop_path_rate = 0.2
out_indices = [3]
[model.backbone.method]
type = "mona"
[model.head]
type = "LinearClsHead"
num_classes = 1000
[optimizer]
type = "AdamW"
lr = 1e-4
weight_decay = 0.05
"#;

/// Mean milliseconds of `steps` runs of `body`, after one warm-up run (the first run pays
/// for allocations and, on GPUs, kernel compilation).
fn mean_ms(steps: usize, mut body: impl FnMut()) -> f64 {
    body();
    let t = Instant::now();
    for _ in 0..steps {
        body();
    }
    1000.0 * t.elapsed().as_secs_f64() / steps.max(1) as f64
}

fn main() {
    let steps = arg("--steps", 5);
    let batch = arg("--batch", 2);
    let size = arg("--size", 224);
    let cfg = Config::from_str_at(CONFIG, "bench.toml").expect("config");
    let device = Device::flex().autodiff();
    device.seed(0);
    let model = ImageClassifier::from_config(&cfg.node("model").unwrap(), &device).unwrap();
    let rules = model.clone();
    let model = set_trainable(model, &|k| rules.trainable(k));
    let _ = param_data(&model, &|_| true);
    let mut optim = Optimizer::from_config(&cfg.node("optimizer").unwrap(), &model, &|k| {
        rules.trainable(k)
    })
    .unwrap();
    let images = || {
        Tensor::<4>::random(
            [batch, 3, size, size],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
    };
    let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64; batch], [batch]), &device);

    let mut state = Some(model);
    let train_ms = mean_ms(steps, || {
        let model = state.take().expect("model");
        let logits = model.forward(images(), true);
        let loss = model.loss(logits, labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(model, grads, &|b| b, Some(5.0)).0;
        let _ = param_data(&model.head, &|_| true); // wait for the update to finish
        state = Some(model);
    });
    let model = state.expect("model");
    println!(
        "{}",
        serde_json::json!({
            "case": "swin_t_mona_train_step", "device": "flex (CPU)", "batch": batch, "size": size,
            "ms_per_step": train_ms, "images_per_s": batch as f64 * 1000.0 / train_ms,
            "pytorch_ms_per_step": 438.9,
        })
    );

    let eval = model.valid();
    let cpu = Device::flex();
    let infer_ms = mean_ms(steps, || {
        let x = Tensor::<4>::random([batch, 3, size, size], Distribution::Normal(0.0, 1.0), &cpu);
        let _ = eval.forward(x, false).into_data();
    });
    println!(
        "{}",
        serde_json::json!({
            "case": "swin_t_mona_inference", "device": "flex (CPU)", "batch": batch, "size": size,
            "ms_per_batch": infer_ms, "images_per_s": batch as f64 * 1000.0 / infer_ms,
            "pytorch_ms_per_batch": 134.7,
        })
    );
}
