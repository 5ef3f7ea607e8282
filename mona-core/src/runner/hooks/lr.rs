//! mmcv's `LrUpdaterHook`: before every iteration, each parameter's lr is set from the
//! configured schedule (warmup, then step / poly / cosine ...) at the iteration about to run.

use super::{Hook, RunState};
use crate::runner::error::TrainError;
use crate::runner::optim::Optimizer;
use crate::runner::schedule::LrSchedule;

/// Sets the optimizer's lr for the iteration about to run.
pub struct LrUpdaterHook<'a> {
    pub schedule: &'a LrSchedule,
}

impl<M> Hook<M> for LrUpdaterHook<'_> {
    fn before_iter(
        &mut self,
        run: &mut RunState,
        optimizer: &mut Optimizer,
    ) -> Result<(), TrainError> {
        let progress = run.geometry.progress(run.iter);
        optimizer.set_lr(&|base| self.schedule.lr(base, &progress));
        Ok(())
    }
}
