//! The performance benchmark of the GPU issue: Swin + Mona classification training steps and
//! inference batches on random data, timed per case.
//!
//! The PyTorch numbers stored with the cases are a *fallback from another day* (another
//! machine state, for the GPU rows another machine): they say roughly where the official code
//! stood, but a ratio to them is not a measurement. The comparison to quote comes from
//! `scripts/bench-vs-pytorch.sh`, which runs this binary and the PyTorch model of
//! `bench/pytorch/` side by side, alternating, on the same machine.
//!
//! A case builds `ImageClassifier` (Swin, a tuning method in every block, global pooling, a
//! 1000-way linear head), draws one random batch, runs `warmup` untimed iterations (their
//! times are reported: on CUDA the first iterations compile and autotune every kernel), then
//! `steps` timed ones, synchronising the device after each so the time is the device's.
//! Training is forward + cross entropy + backward + AdamW on the trainable set, as in the
//! official `tools/train.py` (no gradient clipping).

mod cases;

use std::time::Instant;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use mona_cls::ImageClassifier;
use mona_cls::data::ClsBatch;
use mona_core::config::Config;
use mona_core::nn::amp::PrecisionGuard;
use mona_core::params::set_trainable;
use mona_core::runner::{Optimizer, forward_backward, may_split};
use serde::Serialize;

use crate::ToolError;

pub use cases::{BenchCase, all_cases, cpu_cases, custom_case, gpu_cases};

/// What one case measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub case: BenchCase,
    pub device: String,
    /// The shards a batch ran as (`runner.batch_shards` of `train` and `test`; in training
    /// only where the model allows it).
    pub batch_shards: usize,
    /// Milliseconds of each warm-up iteration (compilation and autotuning show here).
    pub warmup_ms: Vec<f64>,
    /// Milliseconds of each timed iteration.
    pub step_ms: Vec<f64>,
    pub mean_ms: f64,
    pub images_per_s: f64,
    /// Our images/s over the case's fallback PyTorch images/s (> 1 is faster). The fallback
    /// is from another day: NOT a ratio to quote (see the module doc). `None` without one.
    pub ratio_to_fallback_pytorch: Option<f64>,
    /// Peak device memory where the backend reports it (CUDA: the memory pools' reserved
    /// bytes after the run, which the pools keep at their high-water mark).
    pub peak_gib: Option<f64>,
    /// The process's peak resident memory in MiB (`VmHWM` of `/proc/self/status`), `None`
    /// where unreadable (not Linux). It is the whole process's high-water mark: with several
    /// cases in one process, a case's value includes the cases before it.
    pub peak_rss_mib: Option<f64>,
}

fn model_config(case: &BenchCase) -> String {
    format!(
        r#"
[model]
type = "ImageClassifier"
[model.backbone]
type = "SwinTransformer"
arch = "{arch}"
drop_path_rate = 0.2
out_indices = [3]
[model.backbone.method]
type = "{method}"
[model.head]
type = "LinearClsHead"
num_classes = 1000
[optimizer]
type = "AdamW"
lr = 1e-4
weight_decay = 0.05
"#,
        arch = case.arch,
        method = case.method
    )
}

fn sync(device: &Device) -> Result<(), ToolError> {
    device
        .sync()
        .map_err(|e| ToolError::Device(format!("{e:?}")))
}

/// Times one iteration (to the device's completion) and logs it, so that a case cut short
/// by a time limit still leaves its per-iteration times in the log.
fn time_ms(device: &Device, phase: &str, body: &mut dyn FnMut()) -> Result<f64, ToolError> {
    let t = Instant::now();
    body();
    sync(device)?;
    let ms = 1000.0 * t.elapsed().as_secs_f64();
    tracing::info!(phase, ms, "iteration");
    Ok(ms)
}

/// Forward + backward milliseconds of Mona's parts at one shape, to find the hot spots:
/// the depthwise 3/5/7 convs and the 1×1 projector of `MonaOp` on `(batch, channels, size,
/// size)`, the exact GELU on the same elements, and a whole Mona module on `(batch, size²,
/// dim)` tokens. Each entry: (part, warm-up ms, mean ms).
pub fn profile_mona_parts(
    device: &Device,
    batch: usize,
    channels: usize,
    size: usize,
    dim: usize,
    warmup: usize,
    steps: usize,
) -> Result<Vec<(String, Vec<f64>, f64)>, ToolError> {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use mona_core::methods::Mona;
    let dev = device.clone().autodiff();
    dev.seed(0);
    let x = Tensor::<4>::random([batch, channels, size, size], Distribution::Default, &dev)
        .require_grad();
    let mut out = Vec::new();
    let mut measure = |name: String, step: &mut dyn FnMut()| -> Result<(), ToolError> {
        let mut warm = Vec::new();
        for _ in 0..warmup {
            warm.push(time_ms(&dev, "warmup", step)?);
        }
        let mut total = 0.0;
        for _ in 0..steps {
            total += time_ms(&dev, "timed", step)?;
        }
        out.push((name, warm, total / steps.max(1) as f64));
        Ok(())
    };
    for (k, groups) in [(3, channels), (5, channels), (7, channels), (1, 1)] {
        let w = Tensor::<4>::random(
            [channels, channels / groups, k, k],
            Distribution::Default,
            &dev,
        )
        .require_grad();
        let name = if groups == 1 {
            "conv1x1".to_string()
        } else {
            format!("depthwise{k}x{k}")
        };
        measure(name, &mut || {
            let y = conv2d(
                x.clone(),
                w.clone(),
                None,
                ConvOptions::new([1, 1], [k / 2, k / 2], [1, 1], groups),
            );
            let _ = y.sum().backward();
        })?;
    }
    measure("gelu".into(), &mut || {
        let _ = mona_core::nn::gelu(x.clone()).sum().backward();
    })?;
    let mona = Mona::new(dim, channels, 0.1, &dev);
    let tokens =
        Tensor::<3>::random([batch, size * size, dim], Distribution::Default, &dev).require_grad();
    measure(format!("mona_module_dim{dim}"), &mut || {
        let _ = mona
            .forward(tokens.clone(), (size, size), true)
            .sum()
            .backward();
    })?;
    Ok(out)
}

/// Runs one case on `device` (the plain device: training adds autodiff itself).
pub fn run_case(
    case: &BenchCase,
    device: &Device,
    device_name: &str,
    warmup: usize,
    steps: usize,
    batch_shards: usize,
) -> Result<BenchResult, ToolError> {
    let _precision = PrecisionGuard::set(case.precision);
    let cfg = Config::from_str_at(&model_config(case), "bench.toml")?;
    let model_node = cfg.node("model")?;
    let work_device = if case.train {
        device.clone().autodiff()
    } else {
        device.clone()
    };
    work_device.seed(0);
    let model = ImageClassifier::from_config(&model_node, &work_device)?;
    let images = Tensor::<4>::random(
        [case.batch, 3, case.size, case.size],
        Distribution::Normal(0.0, 1.0),
        &work_device,
    );
    let (mut warmup_ms, mut step_ms) = (Vec::new(), Vec::new());
    let shards;
    if case.train {
        let rules = model.clone();
        let model = set_trainable(model, &|k| rules.trainable(k));
        let mut optim =
            Optimizer::from_config(&cfg.node("optimizer")?, &model, &|k| rules.trainable(k))?;
        let labels = Tensor::<1, Int>::from_data(
            TensorData::new(
                (0..case.batch as i64).map(|i| i % 1000).collect(),
                [case.batch],
            ),
            &work_device,
        );
        // The step of `train`: the batch cut into the runner's shards where the model
        // allows it.
        let batch = ClsBatch {
            images: images.clone(),
            labels: Some(labels),
            paths: Vec::new(),
        };
        shards = if may_split(&model) { batch_shards } else { 1 };
        let mut state = Some(model);
        let mut seed = 0;
        let mut step = || {
            let model = state.take().expect("the model is put back after each step");
            seed += 1;
            let (_, grads) = forward_backward(&model, &batch, seed, shards, &work_device)
                .expect("the bench batch is labelled");
            state = Some(optim.step(model, grads, None).0);
        };
        for _ in 0..warmup {
            warmup_ms.push(time_ms(&work_device, "warmup", &mut step)?);
        }
        for _ in 0..steps {
            step_ms.push(time_ms(&work_device, "timed", &mut step)?);
        }
    } else {
        let model = model.valid();
        shards = batch_shards;
        let mut step = || {
            let _ = model.forward_sharded(images.clone(), shards);
        };
        for _ in 0..warmup {
            warmup_ms.push(time_ms(&work_device, "warmup", &mut step)?);
        }
        for _ in 0..steps {
            step_ms.push(time_ms(&work_device, "timed", &mut step)?);
        }
    }
    let mean_ms = step_ms.iter().sum::<f64>() / step_ms.len().max(1) as f64;
    let images_per_s = case.batch as f64 * 1000.0 / mean_ms;
    Ok(BenchResult {
        case: case.clone(),
        device: device_name.to_string(),
        batch_shards: shards,
        warmup_ms,
        step_ms,
        mean_ms,
        images_per_s,
        ratio_to_fallback_pytorch: case.fallback_pytorch_images_per_s.map(|p| images_per_s / p),
        peak_gib: peak_memory_gib(device_name),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// This process's peak resident set in MiB, from `/proc/self/status`; `None` where the file
/// cannot be read or holds no `VmHWM` line.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_hwm_mib(&status)
}

/// The `VmHWM:   123456 kB` line of a `/proc/PID/status` text, in MiB.
fn vm_hwm_mib(status: &str) -> Option<f64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let mut fields = line.split_whitespace();
    let kib: f64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(kib / 1024.0),
        _ => None,
    }
}

/// The CUDA memory pools' reserved bytes (they keep their pages, so this is the run's
/// high-water mark of reserved memory), in GiB; `None` on other devices.
#[cfg(feature = "cuda")]
pub fn peak_memory_gib(device_name: &str) -> Option<f64> {
    use cubecl_runtime::memory_management::MemoryScope;
    use cubecl_runtime::runtime::Runtime;
    let index = device_name
        .strip_prefix("cuda")?
        .trim_start_matches(':')
        .parse::<usize>()
        .unwrap_or(0);
    let client = cubecl_cuda::CudaRuntime::client(&cubecl_cuda::CudaDevice::new(index));
    let usage = client.memory_report(MemoryScope::Device).usage();
    Some(usage.bytes_reserved as f64 / (1u64 << 30) as f64)
}

/// No memory report off CUDA.
#[cfg(not(feature = "cuda"))]
pub fn peak_memory_gib(_device_name: &str) -> Option<f64> {
    None
}

/// The NCCL all-reduce of data-parallel training (`train --gpus N`, `--all-reduce nccl`) on
/// `devices` (CUDA), one thread per device as the trainer runs them: each rank submits a
/// 1M-parameter model's gradients scaled by `rank + 1`, and every rank must receive their
/// mean. Returns the largest error over the ranks and the mean time of one reduction
/// (after one untimed call, which creates the NCCL communicator). With one device, this
/// checks that NCCL loads and runs (the mean of one is itself).
pub fn all_reduce_check(devices: &[Device], steps: usize) -> Result<(f32, f64), ToolError> {
    let model = mona_core::nn::Linear::torch_default(1024, 1024, true, &devices[0]);
    let n = devices.len();
    let results: Vec<Result<(f32, f64), ToolError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(rank, device)| {
                let replica = model.clone().fork(device);
                scope.spawn(move || -> Result<(f32, f64), ToolError> {
                    let grads_of = |scale: f32| {
                        let mut grads = GradientsParams::new();
                        let w = replica.weight.val().dims();
                        let ramp: Vec<f32> = (0..w[0] * w[1])
                            .map(|i| (i % 1000) as f32 * 1e-3 * scale)
                            .collect();
                        grads.register(
                            replica.weight.id,
                            Tensor::<2>::from_data(TensorData::new(ramp, w), device),
                        );
                        grads
                    };
                    let scale = (rank + 1) as f32;
                    let _ = mona_core::runner::nccl_mean(&replica, grads_of(scale), devices);
                    sync(device)?;
                    let mut worst = 0f32;
                    let started = Instant::now();
                    for _ in 0..steps.max(1) {
                        let mean = mona_core::runner::nccl_mean(&replica, grads_of(scale), devices);
                        let got = mean
                            .get::<2>(replica.weight.id)
                            .ok_or_else(|| ToolError::Device("no mean gradient".into()))?
                            .into_data()
                            .convert::<f32>()
                            .try_into_vec::<f32>()
                            .map_err(|e| ToolError::Device(format!("{e:?}")))?;
                        let expected_scale = (n + 1) as f32 / 2.0;
                        for (i, g) in got.iter().enumerate() {
                            let want = (i % 1000) as f32 * 1e-3 * expected_scale;
                            worst = worst.max((g - want).abs());
                        }
                    }
                    let ms = started.elapsed().as_secs_f64() * 1e3 / steps.max(1) as f64;
                    Ok((worst, ms))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(ToolError::Device("a rank panicked".into())))
            })
            .collect()
    });
    let mut worst = 0f32;
    let mut ms = 0f64;
    for r in results {
        let (w, t) = r?;
        worst = worst.max(w);
        ms = ms.max(t);
    }
    Ok((worst, ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mona_core::nn::amp::Precision;

    #[test]
    fn vm_hwm_is_read_in_mib() {
        let status = "Name:\tbench\nVmPeak:\t 4096 kB\nVmHWM:\t  204800 kB\nVmRSS:\t 1024 kB\n";
        assert_eq!(vm_hwm_mib(status), Some(200.0));
        assert_eq!(vm_hwm_mib("VmRSS:\t 1024 kB\n"), None);
        assert_eq!(vm_hwm_mib("VmHWM:\t lots kB\n"), None);
        assert_eq!(vm_hwm_mib("VmHWM:\t 1024 pages\n"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_process_has_a_peak_rss() {
        assert!(peak_rss_mib().is_some_and(|m| m > 0.0));
    }

    #[test]
    fn cpu_cases_cover_the_baselines_at_one_shape() {
        let cases = cpu_cases();
        let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "swin_t_mona_train_b2_224_cpu",
                "swin_t_mona_infer_b2_224_cpu",
                "swin_t_full_train_b2_224_cpu",
                "swin_t_lora_train_b2_224_cpu",
                "swin_t_adapter_train_b2_224_cpu",
            ]
        );
        for case in &cases {
            assert_eq!(
                (case.arch.as_str(), case.batch, case.size),
                ("swin_t", 2, 224)
            );
            assert_eq!(case.precision, Precision::Fp32);
            assert!(case.name.contains(&format!("_{}_", case.method)));
        }
        // Only the Mona rows were ever measured in PyTorch on another day.
        assert!(
            cases[2..]
                .iter()
                .all(|c| c.fallback_pytorch_images_per_s.is_none())
        );
    }

    #[test]
    fn custom_cases_parse_and_bad_specs_are_errors() {
        let case = custom_case("swin_b:adapter:train:32:224:bf16").unwrap();
        assert_eq!((case.method.as_str(), case.batch), ("adapter", 32));
        assert_eq!(case.precision, Precision::Bf16);
        assert!(case.fallback_pytorch_images_per_s.is_none());
        for bad in [
            "swin_b:mona",
            "swin_b:mona:fit:2:224",
            "swin_b:mona:train:x:224",
        ] {
            assert!(custom_case(bad).is_err(), "{bad}");
        }
    }
}
