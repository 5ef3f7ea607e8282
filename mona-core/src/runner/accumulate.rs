//! Gradient accumulation, as mmcv's `GradientCumulativeOptimizerHook` (and the Swin
//! detection fork's `DistOptimizerHook` with `update_interval`): each iteration's gradients
//! are divided by the loss factor and added up; the optimizer steps every `every`
//! iterations and at the last one. A batch of B accumulated k times is then a batch of k·B,
//! up to summation order (BatchNorm aside: its statistics stay those of B samples).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use super::step::{may_split, sum_in_order};

/// The gradients added up since the last optimizer step.
pub(super) struct Accumulator {
    every: usize,
    /// Iterations before this one divide by `every`; later ones by `remainder_iters`.
    divisible_iters: usize,
    remainder_iters: usize,
    pending: Option<GradientsParams>,
}

impl Accumulator {
    /// For a run from iteration `start` to `max_iters`. As in mmcv, the iterations left are
    /// cut into whole groups of `every` and a remainder, and the remainder's losses are
    /// divided by its own length; mmcv compares the absolute iteration with the number of
    /// divisible iterations *left*, which only differs from the intent on a resumed run,
    /// and is kept so that resumed runs match it too.
    pub fn new<M: Module>(model: &M, every: usize, start: usize, max_iters: usize) -> Self {
        if every > 1 {
            if !start.is_multiple_of(every) {
                tracing::warn!(
                    "resumed at iteration {start}, which is not a multiple of cumulative_iters = {every}: \
                     the gradients accumulated before the checkpoint are lost (as in mmcv)"
                );
            }
            if !may_split(model) {
                tracing::warn!(
                    "cumulative_iters = {every} with BatchNorm: its statistics are those of one batch, \
                     not of the {every} accumulated"
                );
            }
        }
        let left = max_iters.saturating_sub(start);
        let divisible_iters = left / every * every;
        Self {
            every,
            divisible_iters,
            remainder_iters: left - divisible_iters,
            pending: None,
        }
    }

    /// Adds iteration `iter`'s gradients; returns the sum to step with when the optimizer
    /// steps after this iteration (every `every` iterations, and at `max_iters`).
    pub fn add<M: Module>(
        &mut self,
        model: &M,
        iter: usize,
        max_iters: usize,
        grads: GradientsParams,
    ) -> Option<GradientsParams> {
        if self.every == 1 {
            return Some(grads);
        }
        let factor = if iter < self.divisible_iters {
            self.every
        } else {
            self.remainder_iters.max(1)
        };
        let scaled = scale(model, grads, 1.0 / factor as f64);
        let sum = match self.pending.take() {
            Some(pending) => sum_in_order(model, vec![pending, scaled]),
            None => scaled,
        };
        if (iter + 1).is_multiple_of(self.every) || iter + 1 == max_iters {
            Some(sum)
        } else {
            self.pending = Some(sum);
            None
        }
    }
}

/// Every gradient of `grads` times `factor`.
fn scale<M: Module>(model: &M, grads: GradientsParams, factor: f64) -> GradientsParams {
    struct Scale {
        grads: GradientsParams,
        factor: f64,
        out: GradientsParams,
    }
    impl ModuleVisitor for Scale {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.grads.remove::<D>(param.id) {
                self.out.register(param.id, g * self.factor);
            }
        }
    }
    let mut visitor = Scale {
        grads,
        factor,
        out: GradientsParams::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}
