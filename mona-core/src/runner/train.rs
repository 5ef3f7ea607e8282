//! The training loop.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::accumulate::Accumulator;
use super::checkpoint::{
    CheckpointMeta, find_last_checkpoint, read_checkpoint, write_checkpoint, write_checkpoint_file,
};
use super::config::{RunnerCfg, RunnerKind};
use super::error::TrainError;
use super::logger::{JsonLog, memory_mb};
use super::optim::Optimizer;
use super::parallel::DataParallel;
use super::replica::Replicas;
use super::save_best::SaveBest;
use super::schedule::{LrSchedule, Progress};
use super::step::{StepValues, forward_backward, may_split};
use super::{BatchSource, Metrics, TrainModel};
use crate::checkpoint::adapter_file;
use crate::params::{load_params, param_data};

/// Where to resume from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// Start fresh.
    No,
    /// From the newest checkpoint of the work dir, if there is one.
    Auto,
    /// From this checkpoint file.
    From(PathBuf),
}

/// Everything the loop needs besides the model, data and evaluation.
pub struct TrainOptions {
    pub work_dir: PathBuf,
    pub seed: u64,
    pub resume: Resume,
    pub runner: RunnerCfg,
    /// The merged config, stored in checkpoints and adapter files.
    pub config_toml: String,
    /// The backbone's tuning method, recorded in checkpoints and adapter files.
    pub method: String,
    /// Stop (as if killed) once this many iterations have run in this process; for tests.
    pub stop_after: Option<usize>,
    /// Export the trainable parameters as an adapter file at the end.
    pub export_adapter: bool,
    /// Data-parallel replicas besides the model's device (none by default); see
    /// [`super::parallel`].
    pub parallel: DataParallel,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct TrainSummary {
    /// Completed iterations (global, including those before a resume).
    pub iters: usize,
    /// Completed epochs.
    pub epochs: usize,
    /// The last evaluation's metrics.
    pub metrics: Metrics,
    /// Loss of the last iteration.
    pub last_loss: f64,
    pub last_checkpoint: Option<PathBuf>,
    pub adapter_file: Option<PathBuf>,
    /// Whether training stopped early because of `stop_after`.
    pub interrupted: bool,
    /// Data-parallel runs: the largest difference between a replica's trainable parameters
    /// and the first device's at the end (0 when they stayed in step).
    pub replica_max_diff: Option<f32>,
}

fn work_dir_err(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::WorkDir {
        path: path.to_path_buf(),
        source,
    }
}

/// The `k`-th seed derived from `seed` (splitmix64 of the pair: distinct, well-spread
/// streams). Per iteration: the device RNG (dropout, DropPath) is reseeded at every
/// iteration so a resumed run draws exactly what the uninterrupted one drew.
pub(crate) fn iter_seed(seed: u64, k: usize) -> u64 {
    let mut z = seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn format_eta(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// Runs training to the end of the configured schedule (or `stop_after`).
pub fn train<M, S>(
    model: M,
    mut optimizer: Optimizer,
    schedule: &LrSchedule,
    source: &S,
    evaluate: &mut dyn FnMut(&M) -> Result<Metrics, String>,
    opts: &TrainOptions,
) -> Result<(M, TrainSummary), TrainError>
where
    M: TrainModel,
    S: BatchSource<M::Batch>,
{
    let work_dir = &opts.work_dir;
    std::fs::create_dir_all(work_dir).map_err(work_dir_err(work_dir))?;
    let mut log = JsonLog::open(work_dir).map_err(work_dir_err(work_dir))?;
    // With N devices an iteration consumes N batches (one per device); a remainder at the
    // end of an epoch is dropped, as mmcv's distributed sampler pads or truncates.
    let n_devices = opts.parallel.world_size();
    let batches_per_epoch = source.epoch_len();
    if batches_per_epoch == 0 {
        return Err(TrainError::EmptyData);
    }
    let epoch_len = batches_per_epoch / n_devices;
    if epoch_len == 0 {
        return Err(TrainError::TooFewBatches {
            devices: n_devices,
            batches: batches_per_epoch,
        });
    }
    let (max_iters, max_epochs, by_epoch) = match opts.runner.kind {
        RunnerKind::Epochs(e) => (e * epoch_len, e, true),
        RunnerKind::Iters(i) => (i, i.div_ceil(epoch_len), false),
    };
    let device = model
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(|| burn::tensor::Device::flex().autodiff());

    let mut model = model;
    let mut iter = 0usize;
    let resume_from = match &opts.resume {
        Resume::No => None,
        Resume::Auto => {
            let found = find_last_checkpoint(work_dir)?;
            if found.is_none() {
                tracing::warn!(
                    "--resume: no checkpoint in {} yet; training from the start",
                    work_dir.display()
                );
            }
            found
        }
        Resume::From(p) => Some(p.clone()),
    };
    let mut resumed_best = None;
    if let Some(path) = &resume_from {
        let ckpt = read_checkpoint(path)?;
        let resume_err = |message: String| TrainError::Resume {
            path: path.clone(),
            message,
        };
        if ckpt.meta.method != opts.method {
            return Err(resume_err(format!(
                "the checkpoint is of method `{}`, the config uses `{}`",
                ckpt.meta.method, opts.method
            )));
        }
        let tensors = ckpt.model.tensors.clone().into_iter().collect();
        let (loaded, outcome) = load_params(model, &tensors);
        if !outcome.missing.is_empty() || !outcome.mismatched.is_empty() {
            return Err(resume_err(format!(
                "the checkpoint does not fit the model: {} missing, {} mismatched (first: {:?})",
                outcome.missing.len(),
                outcome.mismatched.len(),
                outcome
                    .missing
                    .first()
                    .or(outcome.mismatched.first().map(|m| &m.key))
            )));
        }
        // After the model check: a checkpoint of another model usually also has another
        // epoch length, and "batches per epoch" would hide what is really wrong.
        if ckpt.meta.epoch_len != epoch_len {
            return Err(resume_err(format!(
                "the checkpoint was written with {} batches per epoch, the data now gives {epoch_len}",
                ckpt.meta.epoch_len
            )));
        }
        model = loaded;
        resumed_best = ckpt.meta.best.clone();
        optimizer.load_state_dict(&ckpt.optimizer, &ckpt.meta.optimizer_steps, &device);
        iter = ckpt.meta.iter;
        let line = format!("resumed from {} at iteration {iter}", path.display());
        tracing::info!("{line}");
        // A resumed run appends to the same logs and repeats the iterations logged after
        // its checkpoint: this record marks where the second run starts.
        let mut marker = serde_json::Map::new();
        marker.insert("mode".into(), "resume".into());
        marker.insert("iter".into(), iter.into());
        marker.insert("epoch".into(), ckpt.meta.epoch.into());
        marker.insert("checkpoint".into(), path.display().to_string().into());
        log.record(marker, &line).map_err(work_dir_err(work_dir))?;
    }

    let mut save_best = opts
        .runner
        .save_best
        .clone()
        .map(|cfg| SaveBest::new(cfg, resumed_best));
    let cumulative_iters = opts.runner.cumulative_iters;
    if cumulative_iters > 1 && n_devices > 1 {
        return Err(TrainError::AccumulateAcrossDevices {
            cumulative_iters,
            devices: n_devices,
        });
    }
    let mut accumulator = Accumulator::new(&model, cumulative_iters, iter, max_iters);
    // The gradient norm of the last optimizer step (logged; 0 without clipping).
    let mut grad_norm = 0.0;

    let mut replicas = if n_devices > 1 {
        Some(Replicas::start(
            &model,
            &optimizer,
            schedule,
            opts.runner.grad_clip,
            &device,
            &opts.parallel,
        )?)
    } else {
        None
    };

    // A batch splits only on one device (the replicas of several already share the cores).
    let batch_shards = if n_devices == 1 && may_split(&model) {
        opts.runner.batch_shards
    } else {
        1
    };

    let interactive = std::io::stderr().is_terminal();
    let bar = if interactive {
        indicatif::ProgressBar::new(max_iters as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} iters [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(iter as u64);

    let mut summary = TrainSummary {
        iters: iter,
        epochs: iter / epoch_len,
        ..Default::default()
    };
    let started = Instant::now();
    let start_iter = iter;
    let mut ran_here = 0usize;
    let mut window_loss: Vec<(String, f64)> = Vec::new();
    let mut window_n = 0usize;
    let mut data_time = 0.0;
    let mut last_eval_iter = None;
    let checkpoint_meta = |iter: usize, optimizer_steps, best| CheckpointMeta {
        iter,
        epoch: iter / epoch_len,
        epoch_len,
        seed: opts.seed,
        method: opts.method.clone(),
        config: opts.config_toml.clone(),
        optimizer_steps,
        best,
    };
    // `epoch_N` or `iter_N`: the name of a checkpoint written after iteration `iter`.
    let position_tag = |iter: usize| {
        if by_epoch {
            format!("epoch_{}", iter / epoch_len)
        } else {
            format!("iter_{iter}")
        }
    };
    let progress_at = |iter: usize| Progress {
        epoch: iter / epoch_len,
        iter,
        epoch_len,
        max_epochs,
        max_iters,
    };

    'outer: while iter < max_iters {
        let epoch = iter / epoch_len;
        let mut batches = source.iter_epoch(epoch, (iter % epoch_len) * n_devices);
        loop {
            if iter >= max_iters {
                break;
            }
            let t_data = Instant::now();
            let mut batch_group = Vec::with_capacity(n_devices);
            for _ in 0..n_devices {
                match batches.next() {
                    Some(b) => batch_group.push(b.map_err(TrainError::Data)?),
                    None => break,
                }
            }
            if batch_group.len() < n_devices {
                break;
            }
            data_time += t_data.elapsed().as_secs_f64();
            let t_iter = Instant::now();

            let progress = progress_at(iter);
            let mut batch_group = batch_group.into_iter();
            let first = batch_group.next().expect("one batch per device");
            if let Some(replicas) = &mut replicas {
                for (k, batch) in batch_group.enumerate() {
                    let moved = M::batch_to_device(&batch, replicas.device(k))
                        .ok_or(TrainError::NoDataParallel)?;
                    let seed = iter_seed(opts.seed.wrapping_add(k as u64 + 1), iter);
                    replicas.send(k, moved, seed, progress)?;
                }
            }
            let seed = iter_seed(opts.seed, iter);
            let step = match &mut replicas {
                Some(replicas) => {
                    replicas.guard(|| forward_backward(&model, &first, seed, 1, &device))?
                }
                None => forward_backward(&model, &first, seed, batch_shards, &device),
            };
            let (values, grads) = step.map_err(|source| TrainError::Loss {
                iter: iter + 1,
                source,
            })?;
            let (values, grads) = match &mut replicas {
                Some(replicas) => replicas.reduce(&model, values, grads)?,
                None => (vec![values], grads),
            };
            // The logged losses are the means over the devices.
            let mut mean = StepValues::default();
            for v in &values {
                mean.add_scaled(v, |x| x / n_devices as f64);
            }
            let StepValues {
                loss: loss_value,
                parts,
            } = mean;
            if !loss_value.is_finite() {
                return Err(TrainError::NonFinite {
                    iter: iter + 1,
                    loss: loss_value,
                });
            }
            let lr_at = |base: f64| schedule.lr(base, &progress);
            if let Some(grads) = accumulator.add(&model, iter, max_iters, grads) {
                let (stepped, stats) = optimizer.step(model, grads, &lr_at, opts.runner.grad_clip);
                model = stepped;
                grad_norm = stats.grad_norm;
            }
            iter += 1;
            ran_here += 1;
            summary.last_loss = loss_value;

            if window_loss.is_empty() {
                window_loss.push(("loss".into(), 0.0));
                for (k, _) in &parts {
                    window_loss.push((k.clone(), 0.0));
                }
            }
            window_loss[0].1 += loss_value;
            for (k, v) in &parts {
                if let Some(slot) = window_loss.iter_mut().find(|(n, _)| n == k) {
                    slot.1 += v;
                }
            }
            window_n += 1;
            bar.set_position(iter as u64);
            bar.set_message(format!("loss {loss_value:.4}"));

            if iter.is_multiple_of(opts.runner.log_interval) || iter == max_iters {
                let elapsed = started.elapsed().as_secs_f64();
                let per_iter = elapsed / (iter - start_iter).max(1) as f64;
                let mut rec = Map::new();
                rec.insert("mode".into(), json!("train"));
                rec.insert("epoch".into(), json!(iter.div_ceil(epoch_len)));
                rec.insert("iter".into(), json!(iter));
                rec.insert(
                    "lr".into(),
                    json!(schedule.lr(optimizer.base_lr, &progress)),
                );
                let mut human_losses = String::new();
                for (k, v) in &window_loss {
                    let mean = v / window_n as f64;
                    rec.insert(k.clone(), json!(mean));
                    human_losses.push_str(&format!(", {k}: {mean:.4}"));
                }
                rec.insert("grad_norm".into(), json!(grad_norm));
                rec.insert("time".into(), json!(t_iter.elapsed().as_secs_f64()));
                rec.insert("data_time".into(), json!(data_time / window_n as f64));
                rec.insert("memory".into(), json!(memory_mb().round()));
                let human = if by_epoch {
                    format!(
                        "Epoch [{}][{}/{}]\tlr: {:.3e}, eta: {}, time: {:.3}, data_time: {:.3}, memory: {:.0}{human_losses}",
                        iter.div_ceil(epoch_len),
                        (iter - 1) % epoch_len + 1,
                        epoch_len,
                        schedule.lr(optimizer.base_lr, &progress),
                        format_eta(per_iter * (max_iters - iter) as f64),
                        per_iter,
                        data_time / window_n as f64,
                        memory_mb()
                    )
                } else {
                    format!(
                        "Iter [{iter}/{max_iters}]\tlr: {:.3e}, eta: {}, time: {:.3}, data_time: {:.3}, memory: {:.0}{human_losses}",
                        schedule.lr(optimizer.base_lr, &progress),
                        format_eta(per_iter * (max_iters - iter) as f64),
                        per_iter,
                        data_time / window_n as f64,
                        memory_mb()
                    )
                };
                if !interactive {
                    tracing::info!("{human}");
                }
                log.record(rec, &human).map_err(work_dir_err(work_dir))?;
                window_loss.clear();
                window_n = 0;
                data_time = 0.0;
            }

            let epoch_done = iter.is_multiple_of(epoch_len);
            let (eval_now, ckpt_now) = if by_epoch {
                let e = iter / epoch_len;
                (
                    epoch_done
                        && opts.runner.eval_interval > 0
                        && e.is_multiple_of(opts.runner.eval_interval),
                    epoch_done
                        && (e.is_multiple_of(opts.runner.checkpoint_interval.max(1))
                            || iter == max_iters),
                )
            } else {
                (
                    opts.runner.eval_interval > 0 && iter.is_multiple_of(opts.runner.eval_interval),
                    iter.is_multiple_of(opts.runner.checkpoint_interval.max(1))
                        || iter == max_iters,
                )
            };
            let eval_now = eval_now || (iter == max_iters && opts.runner.eval_interval > 0);
            if eval_now && last_eval_iter != Some(iter) {
                bar.suspend(|| -> Result<(), TrainError> {
                    let metrics = evaluate(&model).map_err(TrainError::Eval)?;
                    let mut rec = Map::new();
                    rec.insert("mode".into(), json!("val"));
                    rec.insert("epoch".into(), json!(iter / epoch_len));
                    rec.insert("iter".into(), json!(iter));
                    let mut human = if by_epoch {
                        format!("Epoch(val) [{}]", iter / epoch_len)
                    } else {
                        format!("Iter(val) [{iter}]")
                    };
                    for (k, v) in &metrics {
                        rec.insert(k.clone(), Value::from(*v));
                        human.push_str(&format!("\t{k}: {v:.4}"));
                    }
                    tracing::info!("{human}");
                    log.record(rec, &human).map_err(work_dir_err(work_dir))?;
                    summary.metrics = metrics;
                    Ok(())
                })?;
                last_eval_iter = Some(iter);
                let tag = position_tag(iter);
                let new_best = match &mut save_best {
                    Some(tracker) => tracker
                        .after_eval(&summary.metrics, &tag)
                        .map_err(TrainError::Eval)?,
                    None => None,
                };
                if let Some(new_best) = new_best {
                    let (optim_tensors, steps) = optimizer.state_dict();
                    let meta = checkpoint_meta(iter, steps, Some(new_best.best.clone()));
                    let path = write_checkpoint_file(
                        work_dir,
                        &new_best.best.file,
                        &param_data(&model, &|_| true),
                        &optim_tensors,
                        &meta,
                    )?;
                    if let Some(old) = &new_best.replaces {
                        let _ = std::fs::remove_file(work_dir.join(old));
                    }
                    log.text(&format!(
                        "best {} is {:.4} at {tag}; saved {}",
                        new_best.best.metric,
                        new_best.best.score,
                        path.display()
                    ))
                    .map_err(work_dir_err(work_dir))?;
                }
            }
            if ckpt_now {
                let name = format!("{}.safetensors", position_tag(iter));
                let (optim_tensors, steps) = optimizer.state_dict();
                let best = save_best.as_ref().and_then(|t| t.best.clone());
                let meta = checkpoint_meta(iter, steps, best);
                let path = write_checkpoint(
                    work_dir,
                    &name,
                    &param_data(&model, &|_| true),
                    &optim_tensors,
                    &meta,
                )?;
                log.text(&format!("saved checkpoint {}", path.display()))
                    .map_err(work_dir_err(work_dir))?;
                prune_checkpoints(work_dir, by_epoch, opts.runner.max_keep_ckpts, &name);
                summary.last_checkpoint = Some(path);
            }
            if opts.stop_after.is_some_and(|n| ran_here >= n) {
                summary.interrupted = true;
                break 'outer;
            }
        }
    }
    bar.finish_and_clear();
    if let Some(replicas) = replicas {
        let diff = replicas.finish(&model)?;
        let line = format!(
            "data-parallel replicas: largest difference from the first device's trainable parameters {diff:e}"
        );
        if diff > 0.0 {
            tracing::warn!("{line}");
        }
        let mut rec = Map::new();
        rec.insert("mode".into(), json!("replicas"));
        rec.insert("iter".into(), json!(iter));
        rec.insert("devices".into(), json!(n_devices));
        rec.insert("max_diff".into(), json!(diff));
        log.record(rec, &line).map_err(work_dir_err(work_dir))?;
        summary.replica_max_diff = Some(diff);
    }
    summary.iters = iter;
    summary.epochs = iter / epoch_len;
    if opts.export_adapter && !summary.interrupted {
        let path = work_dir.join("adapter_final.safetensors");
        let n = adapter_file::save_adapter(
            &model,
            &|k| model.trainable(k),
            &path,
            &opts.method,
            &opts.config_toml,
        )?;
        log.text(&format!(
            "exported {n} trainable tensors to {}",
            path.display()
        ))
        .map_err(work_dir_err(work_dir))?;
        summary.adapter_file = Some(path);
    }
    Ok((model, summary))
}

/// Deletes interval checkpoints beyond the newest `keep` (mmcv `max_keep_ckpts`).
fn prune_checkpoints(work_dir: &Path, by_epoch: bool, keep: i64, newest: &str) {
    if keep <= 0 {
        return;
    }
    let prefix = if by_epoch { "epoch_" } else { "iter_" };
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(work_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix(prefix)?
                .strip_suffix(".safetensors")?
                .parse()
                .ok()?;
            (name != newest).then(|| (n, e.path()))
        })
        .collect();
    found.sort();
    let excess = (found.len() + 1).saturating_sub(keep as usize);
    for (_, path) in found.into_iter().take(excess) {
        let _ = std::fs::remove_file(path);
    }
}
