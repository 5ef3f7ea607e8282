//! mmcv's `EvalHook`: evaluation every `evaluation.interval` epochs or iterations and at the
//! end, a `val` record, and with `evaluation.save_best` the best checkpoint.

use serde_json::{Map, Value, json};

use super::checkpoint::checkpoint_meta;
use super::{Hook, IterOutcome, RunState};
use crate::params::param_data;
use crate::runner::checkpoint::write_checkpoint_file;
use crate::runner::error::TrainError;
use crate::runner::optim::Optimizer;
use crate::runner::options::TrainOptions;
use crate::runner::save_best::SaveBest;
use crate::runner::{BoxError, Metrics, TrainModel};

/// Evaluates the model with the task's closure.
pub struct EvalHook<'a, M> {
    evaluate: &'a mut dyn FnMut(&M) -> Result<Metrics, BoxError>,
    opts: &'a TrainOptions,
    save_best: Option<SaveBest>,
    last_eval_iter: Option<usize>,
}

impl<'a, M> EvalHook<'a, M> {
    /// `save_best` carries the best score of a resumed run.
    pub fn new(
        evaluate: &'a mut dyn FnMut(&M) -> Result<Metrics, BoxError>,
        opts: &'a TrainOptions,
        save_best: Option<SaveBest>,
    ) -> Self {
        Self {
            evaluate,
            opts,
            save_best,
            last_eval_iter: None,
        }
    }

    fn due(&self, run: &RunState) -> bool {
        let (iter, g) = (run.iter, run.geometry);
        let interval = self.opts.runner.eval_interval;
        (g.at_interval(iter, interval) || (iter == g.max_iters && interval > 0))
            && self.last_eval_iter != Some(iter)
    }
}

impl<M: TrainModel> Hook<M> for EvalHook<'_, M> {
    fn after_iter(
        &mut self,
        run: &mut RunState,
        model: &M,
        optimizer: &Optimizer,
        _: &IterOutcome,
    ) -> Result<(), TrainError> {
        run.evaluated = None;
        if !self.due(run) {
            return Ok(());
        }
        let (iter, g) = (run.iter, run.geometry);
        let bar = run.bar.clone();
        bar.suspend(|| -> Result<(), TrainError> {
            let metrics = (self.evaluate)(model).map_err(TrainError::Eval)?;
            let mut rec = Map::new();
            rec.insert("mode".into(), json!("val"));
            rec.insert("epoch".into(), json!(iter / g.epoch_len));
            rec.insert("iter".into(), json!(iter));
            let mut human = if g.by_epoch {
                format!("Epoch(val) [{}]", iter / g.epoch_len)
            } else {
                format!("Iter(val) [{iter}]")
            };
            for (k, v) in &metrics {
                rec.insert(k.clone(), Value::from(*v));
                human.push_str(&format!("\t{k}: {v:.4}"));
            }
            tracing::info!("{human}");
            run.log.record(rec, &human).map_err(run.log_err())?;
            run.summary.metrics = metrics;
            Ok(())
        })?;
        self.last_eval_iter = Some(iter);
        run.evaluated = Some(run.summary.metrics.clone());
        let Some(tracker) = &mut self.save_best else {
            return Ok(());
        };
        let tag = g.position_tag(iter);
        let new_best = tracker
            .after_eval(&run.summary.metrics, &tag)
            .map_err(|e| TrainError::Eval(e.into()))?;
        run.best = tracker.best.clone();
        let Some(new_best) = new_best else {
            return Ok(());
        };
        let (optim_tensors, steps) = optimizer.state_dict();
        let meta = checkpoint_meta(self.opts, &g, iter, steps, Some(new_best.best.clone()));
        let path = write_checkpoint_file(
            &run.work_dir,
            &new_best.best.file,
            &param_data(model, &|_| true),
            &optim_tensors,
            &meta,
        )?;
        if let Some(old) = &new_best.replaces {
            let _ = std::fs::remove_file(run.work_dir.join(old));
        }
        let line = format!(
            "best {} is {:.4} at {tag}; saved {}",
            new_best.best.metric,
            new_best.best.score,
            path.display()
        );
        run.log.text(&line).map_err(run.log_err())
    }
}
