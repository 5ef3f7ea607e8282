//! The progress bar on a terminal.

use super::{Hook, IterOutcome, RunState};
use crate::runner::error::TrainError;
use crate::runner::optim::Optimizer;

/// Moves the bar and shows the last loss; clears it at the end.
pub struct ProgressHook;

impl<M> Hook<M> for ProgressHook {
    fn after_iter(
        &mut self,
        run: &mut RunState,
        _: &M,
        _: &Optimizer,
        step: &IterOutcome,
    ) -> Result<(), TrainError> {
        run.bar.set_position(run.iter as u64);
        run.bar.set_message(format!("loss {:.4}", step.loss));
        Ok(())
    }

    fn after_run(&mut self, run: &mut RunState, _: &M) -> Result<(), TrainError> {
        run.bar.finish_and_clear();
        Ok(())
    }
}
