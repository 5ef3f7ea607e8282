//! mmcv's `CheckpointHook`: a checkpoint every `checkpoint_config.interval` epochs or
//! iterations and at the end, the oldest pruned beyond `max_keep_ckpts`.

use std::path::{Path, PathBuf};

use super::{Geometry, Hook, IterOutcome, RunState};
use crate::params::param_data;
use crate::runner::TrainModel;
use crate::runner::checkpoint::{CheckpointMeta, write_checkpoint};
use crate::runner::error::TrainError;
use crate::runner::optim::Optimizer;
use crate::runner::options::TrainOptions;
use crate::runner::save_best::Best;

/// What a checkpoint written after iteration `iter` records besides the tensors.
pub(crate) fn checkpoint_meta(
    opts: &TrainOptions,
    g: &Geometry,
    iter: usize,
    optimizer_steps: std::collections::BTreeMap<String, u64>,
    best: Option<Best>,
) -> CheckpointMeta {
    CheckpointMeta {
        iter,
        epoch: iter / g.epoch_len,
        epoch_len: g.epoch_len,
        seed: opts.seed,
        method: opts.method.clone(),
        config: opts.config_toml.clone(),
        optimizer_steps,
        best,
        classes: opts.classes.clone(),
    }
}

/// Writes interval checkpoints (model, optimizer state, position) atomically.
pub struct CheckpointHook<'a> {
    opts: &'a TrainOptions,
}

impl<'a> CheckpointHook<'a> {
    pub fn new(opts: &'a TrainOptions) -> Self {
        Self { opts }
    }
}

impl<M: TrainModel> Hook<M> for CheckpointHook<'_> {
    fn after_iter(
        &mut self,
        run: &mut RunState,
        model: &M,
        optimizer: &Optimizer,
        _: &IterOutcome,
    ) -> Result<(), TrainError> {
        let (iter, g) = (run.iter, run.geometry);
        let interval = self.opts.runner.checkpoint_interval.max(1);
        // The last iteration always saves (mmcv's save_last); it ends an epoch of an
        // epoch-based run, whose length is whole epochs.
        if !(g.at_interval(iter, interval) || iter == g.max_iters) {
            return Ok(());
        }
        let name = format!("{}.safetensors", g.position_tag(iter));
        let (optim_tensors, steps) = optimizer.state_dict();
        let meta = checkpoint_meta(self.opts, &g, iter, steps, run.best.clone());
        let path = write_checkpoint(
            &run.work_dir,
            &name,
            &param_data(model, &|_| true),
            &optim_tensors,
            &meta,
        )?;
        let line = format!("saved checkpoint {}", path.display());
        run.log.text(&line).map_err(run.log_err())?;
        prune_checkpoints(
            &run.work_dir,
            g.by_epoch,
            self.opts.runner.max_keep_ckpts,
            &name,
        );
        run.summary.last_checkpoint = Some(path);
        Ok(())
    }
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
