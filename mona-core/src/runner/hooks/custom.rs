//! A `custom_hooks` hook inside the runner's hook list.

use super::{Hook, IterOutcome, RunState};
use crate::runner::BoxError;
use crate::runner::custom_hooks::{CustomHook, HookView};
use crate::runner::error::TrainError;
use crate::runner::logger::JsonLog;
use crate::runner::optim::Optimizer;

/// A custom hook inside the runner: errors stop the run naming the hook.
pub(crate) struct Custom {
    pub name: &'static str,
    pub hook: Box<dyn CustomHook>,
}

impl Custom {
    fn err(&self, source: BoxError) -> TrainError {
        TrainError::Hook {
            hook: self.name,
            source,
        }
    }
}

/// The view of `run` for a custom hook, and its log (disjoint fields of the state).
fn split<'a>(
    run: &'a mut RunState,
    loss: f64,
    parts: &'a [(String, f64)],
) -> (HookView<'a>, &'a mut JsonLog) {
    let RunState {
        log,
        work_dir,
        evaluated,
        geometry,
        iter,
        ..
    } = run;
    let view = HookView {
        iter: *iter,
        epoch: iter.div_ceil(geometry.epoch_len),
        max_iters: geometry.max_iters,
        loss,
        parts,
        metrics: evaluated.as_ref(),
        work_dir,
    };
    (view, log)
}

impl<M> Hook<M> for Custom {
    fn after_iter(
        &mut self,
        run: &mut RunState,
        _: &M,
        _: &Optimizer,
        step: &IterOutcome,
    ) -> Result<(), TrainError> {
        let (view, log) = split(run, step.loss, &step.parts);
        let result = self.hook.after_iter(&view, log);
        result.map_err(|m| self.err(m))
    }

    fn after_run(&mut self, run: &mut RunState, _: &M) -> Result<(), TrainError> {
        let loss = run.summary.last_loss;
        let (view, log) = split(run, loss, &[]);
        let result = self.hook.after_run(&view, log);
        result.map_err(|m| self.err(m))
    }
}
