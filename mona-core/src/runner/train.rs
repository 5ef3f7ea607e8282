//! The training loop: resume, the step (one device, batch shards, or data-parallel
//! replicas), gradient accumulation and the optimizer; everything around the step is a hook
//! ([`super::hooks`]).

use std::io::IsTerminal;
use std::time::Instant;

use super::accumulate::Accumulator;
use super::all_reduce::process_mean;
use super::checkpoint::{find_last_checkpoint, read_checkpoint};
use super::config::RunnerKind;
use super::error::{TrainError, work_dir_err};
use super::hooks::custom::Custom;
use super::hooks::{
    AdapterExportHook, CheckpointHook, EvalHook, Geometry, Hook, IterOutcome, LoggerHook,
    LrUpdaterHook, ProgressHook, ReplicaSummaryHook, RunState,
};
use super::logger::JsonLog;
use super::optim::Optimizer;
use super::options::{Resume, TrainOptions, TrainSummary};
use super::replica::Replicas;
use super::save_best::SaveBest;
use super::schedule::LrSchedule;
use super::step::{StepValues, forward_backward, may_split};
use super::{BatchSource, BoxError, Metrics, TrainModel};
use crate::params::load_params;

/// The `k`-th seed derived from `seed` (splitmix64 of the pair: distinct, well-spread
/// streams). Per iteration: the device RNG (dropout, DropPath) is reseeded at every
/// iteration so a resumed run draws exactly what the uninterrupted one drew.
pub(crate) fn iter_seed(seed: u64, k: usize) -> u64 {
    let mut z = seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The iteration a run with `epoch_len` batches per epoch resumes `meta` at. With the
/// checkpoint's own epoch length (the same data, processes and batch), its iteration, exactly
/// where it stopped. With another (another world size or batch size), as mmcv's runners
/// resume: an epoch-based run at the start of the epoch after the checkpoint's, which must
/// have ended one; an iteration-based run at the checkpoint's iteration, its data from the
/// matching position of the new epochs.
fn resume_position(
    meta: &super::checkpoint::CheckpointMeta,
    epoch_len: usize,
    by_epoch: bool,
) -> Result<usize, String> {
    if meta.epoch_len == epoch_len || !by_epoch {
        return Ok(meta.iter);
    }
    if meta.epoch_len > 0 && meta.iter.is_multiple_of(meta.epoch_len) {
        return Ok(meta.epoch * epoch_len);
    }
    Err(format!(
        "the checkpoint was written with {} batches per epoch in the middle of epoch {}, and the data now gives {epoch_len} per epoch (other processes or another batch size): resume it with the same global batch, or resume a checkpoint written at the end of an epoch",
        meta.epoch_len,
        meta.epoch + 1
    ))
}

/// Runs training to the end of the configured schedule (or `stop_after`).
pub fn train<M, S>(
    model: M,
    mut optimizer: Optimizer,
    schedule: &LrSchedule,
    source: &S,
    evaluate: &mut dyn FnMut(&M) -> Result<Metrics, BoxError>,
    opts: &TrainOptions,
) -> Result<(M, TrainSummary), TrainError>
where
    M: TrainModel,
    S: BatchSource<M::Batch>,
{
    let work_dir = &opts.work_dir;
    // A distributed run writes from rank 0 only.
    let group = opts.process.as_ref();
    let primary = crate::dist::is_primary(group);
    let mut log = if primary {
        std::fs::create_dir_all(work_dir).map_err(work_dir_err(work_dir))?;
        JsonLog::open(work_dir).map_err(work_dir_err(work_dir))?
    } else {
        JsonLog::discard(work_dir)
    };
    // With N devices an iteration consumes N batches (one per device). The tasks' loaders
    // pad their epochs to a multiple of N as mmcv's distributed samplers do; a source that
    // does not leaves out the remainder, with a warning. Threads take the N batches in
    // turn; rank r of N processes takes batch N·i + r.
    let (rank, n_devices) = match group {
        Some(g) => (g.rank(), g.world()),
        None => (0, opts.parallel.world_size()),
    };
    // batches this process loads per iteration
    let per_iter = if group.is_some() { 1 } else { n_devices };
    // SyncBN layers sum their statistics over the processes
    let _entered = group.cloned().map(crate::dist::Entered::enter);
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
    let left_out = batches_per_epoch % n_devices;
    if left_out > 0 {
        tracing::warn!(
            "{left_out} of the {batches_per_epoch} batches of each epoch are left out: {n_devices} devices take {n_devices} batches per iteration (mmcv's distributed sampler pads the epoch with repeated images instead)"
        );
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
        iter = resume_position(&ckpt.meta, epoch_len, by_epoch).map_err(resume_err)?;
        model = loaded;
        resumed_best = ckpt.meta.best.clone();
        optimizer.load_state_dict(&ckpt.optimizer, &ckpt.meta.optimizer_steps, &device);
        let line = if ckpt.meta.epoch_len == epoch_len {
            format!("resumed from {} at iteration {iter}", path.display())
        } else {
            format!(
                "resumed from {} (written with {} batches per epoch, now {epoch_len}) at epoch {}, iteration {iter}",
                path.display(),
                ckpt.meta.epoch_len,
                ckpt.meta.epoch
            )
        };
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

    let save_best = opts
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

    // thread replicas (`--gpus N`); the ranks of a distributed run are processes
    let mut replicas = if n_devices > 1 && group.is_none() {
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
    let bar = super::logger::progress_bar(max_iters as u64, "iters");
    bar.set_position(iter as u64);

    let geometry = Geometry {
        epoch_len,
        max_iters,
        max_epochs,
        by_epoch,
    };
    let mut run = RunState {
        work_dir: work_dir.clone(),
        log,
        bar,
        geometry,
        iter,
        start_iter: iter,
        started: Instant::now(),
        summary: TrainSummary {
            iters: iter,
            epochs: iter / epoch_len,
            ..Default::default()
        },
        best: save_best.as_ref().and_then(|t| t.best.clone()),
        evaluated: None,
        replica_diff: None,
    };
    let mut hooks: Vec<Box<dyn Hook<M> + '_>> = vec![Box::new(LrUpdaterHook { schedule })];
    // The other ranks of a distributed run train and take their share of each evaluation
    // (mmcv's `DistEvalHook`); rank 0 alone logs and saves (mmcv's `master_only` hooks).
    if primary {
        hooks.push(Box::new(ProgressHook));
        hooks.push(Box::new(LoggerHook::new(
            opts.runner.log_interval,
            interactive,
        )));
    }
    let save_best = save_best.filter(|_| primary);
    hooks.push(Box::new(EvalHook::new(evaluate, opts, save_best)));
    if primary {
        hooks.push(Box::new(CheckpointHook::new(opts)));
        hooks.push(Box::new(ReplicaSummaryHook { devices: n_devices }));
    }
    if opts.export_adapter && primary {
        hooks.push(Box::new(AdapterExportHook {
            method: &opts.method,
            config_toml: &opts.config_toml,
            classes: &opts.classes,
        }));
    }
    for spec in opts.runner.custom_hooks.iter().filter(|_| primary) {
        let hook = spec.build().map_err(|source| TrainError::Hook {
            hook: spec.name,
            source,
        })?;
        hooks.push(Box::new(Custom {
            name: spec.name,
            hook,
        }));
    }
    let mut ran_here = 0usize;

    'outer: while iter < max_iters {
        let epoch = iter / epoch_len;
        // the first batch of this iteration, of all the devices
        let start = (iter % epoch_len) * n_devices;
        let mut batches = match group {
            Some(_) => source.iter_epoch_strided(epoch, start + rank, n_devices),
            None => source.iter_epoch(epoch, start),
        };
        loop {
            if iter >= max_iters {
                break;
            }
            let t_data = Instant::now();
            let mut batch_group = Vec::with_capacity(per_iter);
            for _ in 0..per_iter {
                match batches.next() {
                    Some(b) => batch_group.push(b.map_err(TrainError::Data)?),
                    None => break,
                }
            }
            if batch_group.len() < per_iter {
                break;
            }
            let data_time = t_data.elapsed().as_secs_f64();
            let t_iter = Instant::now();

            for hook in &mut hooks {
                hook.before_iter(&mut run, &mut optimizer)?;
            }
            let progress = geometry.progress(iter);
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
            // rank r draws what thread replica r would (rank 0: the run's own stream)
            let seed = iter_seed(opts.seed.wrapping_add(rank as u64), iter);
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
            let (values, grads) = match (&mut replicas, group) {
                (Some(replicas), _) => replicas.reduce(&model, values, grads)?,
                (None, Some(g)) => (vec![values], process_mean(&model, grads, &**g, &device)?),
                (None, None) => (vec![values], grads),
            };
            // The logged losses are the means over the devices.
            let mut mean = StepValues::default();
            for v in &values {
                mean.add_scaled(v, |x| x / n_devices as f64);
            }
            if let Some(g) = group {
                mean = mean.summed_over(&**g)?;
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
            if let Some(grads) = accumulator.add(&model, iter, max_iters, grads) {
                let (stepped, stats) = optimizer.step(model, grads, opts.runner.grad_clip);
                model = stepped;
                grad_norm = stats.grad_norm;
            }
            iter += 1;
            ran_here += 1;
            run.iter = iter;
            run.summary.last_loss = loss_value;
            let outcome = IterOutcome {
                loss: loss_value,
                parts,
                started: t_iter,
                data_time,
                grad_norm,
            };
            for hook in &mut hooks {
                hook.after_iter(&mut run, &model, &optimizer, &outcome)?;
            }
            if opts.stop_after.is_some_and(|n| ran_here >= n) {
                run.summary.interrupted = true;
                break 'outer;
            }
        }
    }
    if let Some(replicas) = replicas {
        run.replica_diff = Some(replicas.finish(&model)?);
    }
    run.summary.iters = iter;
    run.summary.epochs = iter / epoch_len;
    for hook in &mut hooks {
        hook.after_run(&mut run, &model)?;
    }
    drop(hooks);
    Ok((model, run.summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::checkpoint::CheckpointMeta;

    fn meta(iter: usize, epoch_len: usize) -> CheckpointMeta {
        CheckpointMeta {
            iter,
            epoch: iter / epoch_len,
            epoch_len,
            seed: 0,
            method: "mona".into(),
            config: String::new(),
            optimizer_steps: Default::default(),
            best: None,
            classes: Vec::new(),
        }
    }

    #[test]
    fn a_checkpoint_resumes_where_another_world_size_puts_it() {
        // the same batches per epoch: exactly where it stopped, mid-epoch too
        assert_eq!(resume_position(&meta(7, 4), 4, true), Ok(7));
        // 2 processes wrote 2 batches per epoch; alone the data gives 4: after epoch 3
        assert_eq!(resume_position(&meta(6, 2), 4, true), Ok(12));
        assert_eq!(resume_position(&meta(12, 4), 2, true), Ok(6));
        // an iteration-based run keeps its iteration
        assert_eq!(resume_position(&meta(7, 2), 4, false), Ok(7));
        let e = resume_position(&meta(7, 2), 4, true).unwrap_err();
        assert!(
            e.starts_with(
                "the checkpoint was written with 2 batches per epoch in the middle of epoch 4, and the data now gives 4 per epoch"
            ),
            "{e}"
        );
    }
}
