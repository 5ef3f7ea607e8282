//! One training step's forward and backward pass: the whole batch, or the batch cut into
//! shards that run at the same time.
//!
//! On the CPU, a small model's ops are too small to share between cores: most of them run
//! on one thread while the other cores wait, and waking them for the ops that do split
//! costs as much as it saves. A model whose loss is the mean of per-sample losses, and
//! that couples no samples (no BatchNorm), can instead cut its batch into consecutive
//! slices ([`TrainModel::split_batch`]). Each slice runs forward and backward as its own
//! task on the compute pool, on its own fork of the model (fresh autodiff leaves, so the
//! slices build separate graphs), its loss weighted by its share of the samples; the
//! gradients are then summed in slice order. That is the gradient of the whole batch's
//! mean loss, up to summation order, whatever the number of threads: the split depends
//! only on the batch, and every sample draws its dropout and DropPath masks by its index in
//! the whole batch ([`crate::random`]). The shards never touch the backends' process-wide
//! random stream, which is why only models that draw nothing else may split.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use super::{LossError, Losses, TrainModel};
use crate::params::param_infos;
use crate::random::{DrawScope, Shard};
use crate::replica_sync::StreamTurn;

/// The logged values of one step (of one replica, in data-parallel training).
#[derive(Debug, Clone, Default)]
pub struct StepValues {
    pub loss: f64,
    pub parts: Vec<(String, f64)>,
}

impl StepValues {
    /// These values summed over the ranks of `group` (the loss, then each part in order:
    /// every rank's model gives the same parts).
    pub fn summed_over(
        self,
        group: &dyn crate::dist::ProcessGroup,
    ) -> Result<Self, crate::dist::DistError> {
        let mut flat: Vec<f64> = std::iter::once(self.loss)
            .chain(self.parts.iter().map(|(_, v)| *v))
            .collect();
        group.all_reduce_sum_f64("logged losses", &mut flat)?;
        Ok(Self {
            loss: flat[0],
            parts: self
                .parts
                .into_iter()
                .zip(&flat[1..])
                .map(|((name, _), v)| (name, *v))
                .collect(),
        })
    }

    /// The values of `losses` (this waits for the device).
    fn of(losses: Losses) -> Self {
        Self {
            loss: losses.total.into_scalar::<f32>() as f64,
            parts: losses
                .parts
                .into_iter()
                .map(|(name, v)| (name, v.into_scalar::<f32>() as f64))
                .collect(),
        }
    }

    /// Adds `other`'s values, each mapped by `scale` (a weight or a mean's division), to
    /// these: parts by name, in the order they first appear.
    pub fn add_scaled(&mut self, other: &StepValues, scale: impl Fn(f64) -> f64) {
        self.loss += scale(other.loss);
        for (name, x) in &other.parts {
            let x = scale(*x);
            match self.parts.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 += x,
                None => self.parts.push((name.clone(), x)),
            }
        }
    }
}

/// Forward and backward of one batch, the random stream seeded with `seed` (see
/// [`StreamTurn`]: the forward pass holds the process-wide stream, so what a replica draws
/// depends on its seed, not on thread timing). With `shards` > 1 and a model that can split
/// its batch, the slices run at the same time ([`forward_backward_shards`]). A batch the
/// model cannot take is the model's error.
pub fn forward_backward<M: TrainModel>(
    model: &M,
    batch: &M::Batch,
    seed: u64,
    shards: usize,
    device: &Device,
) -> Result<(StepValues, GradientsParams), LossError> {
    if let Some(parts) = (shards > 1)
        .then(|| model.split_batch(batch, shards))
        .flatten()
        .filter(|parts| parts.len() > 1)
    {
        return forward_backward_shards(model, parts, seed, device);
    }
    let losses = {
        let _turn = StreamTurn::take(device, seed);
        let _draws = DrawScope::enter(seed, Shard::WHOLE);
        model.losses(batch, true)?
    };
    // Backward first: reading a loss waits for the device, which then has the backward
    // pass queued instead of sitting idle while it is launched.
    let grads = GradientsParams::from_grads(losses.total.backward(), model);
    Ok((StepValues::of(losses), grads))
}

/// Whether `model` may split its batches: no parameter is a BatchNorm statistic, whose
/// batch statistics would then be those of a shard.
pub fn may_split<M: Module>(model: &M) -> bool {
    !param_infos(model)
        .iter()
        .any(|p| p.key.ends_with("running_mean") || p.key.ends_with("running_var"))
}

/// Forward and backward of `shards` (each with its place in the batch) in parallel, their
/// losses weighted by their share of the samples, the random draws seeded with `seed`.
pub(super) fn forward_backward_shards<M: TrainModel>(
    model: &M,
    shards: Vec<(M::Batch, Shard)>,
    seed: u64,
    device: &Device,
) -> Result<(StepValues, GradientsParams), LossError> {
    let total: usize = shards.iter().map(|(_, s)| s.len).sum();
    let jobs: Vec<(M, M::Batch, Shard)> = shards
        .into_iter()
        .map(|(batch, shard)| (model.clone().fork(device), batch, shard))
        .collect();
    let weight = |shard: Shard| shard.len as f64 / total as f64;
    let results: Vec<(StepValues, GradientsParams, Shard)> = jobs
        .into_par_iter()
        .map(|(replica, batch, shard)| {
            let losses = {
                let _draws = DrawScope::enter(seed, shard);
                replica.losses(&batch, true)?
            };
            let scaled = losses.total.clone() * weight(shard);
            let grads = GradientsParams::from_grads(scaled.backward(), &replica);
            Ok((StepValues::of(losses), grads, shard))
        })
        .collect::<Result<_, LossError>>()?;
    let mut values = StepValues::default();
    let mut grads = Vec::with_capacity(results.len());
    for (v, g, shard) in results {
        values.add_scaled(&v, |x| x * weight(shard));
        grads.push(g);
    }
    Ok((values, sum_in_order(model, grads)))
}

/// Every parameter's gradients summed over `parts`, in order (a part without one adds
/// nothing; a parameter no part has a gradient for gets none).
pub(super) fn sum_in_order<M: Module>(model: &M, parts: Vec<GradientsParams>) -> GradientsParams {
    struct Sum {
        parts: Vec<GradientsParams>,
        out: GradientsParams,
    }
    impl ModuleVisitor for Sum {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let sum = self
                .parts
                .iter_mut()
                .filter_map(|g| g.remove::<D>(param.id))
                .reduce(|a, b| a + b);
            if let Some(sum) = sum {
                self.out.register(param.id, sum);
            }
        }
    }
    let mut visitor = Sum {
        parts,
        out: GradientsParams::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm2d, Linear};

    #[test]
    fn a_model_with_batch_statistics_does_not_split() {
        let device = Device::flex();
        assert!(may_split(&Linear::torch_default(2, 2, true, &device)));
        assert!(!may_split(&BatchNorm2d::new(2, &device)));
    }
}
