use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::RunningBuffer;
use super::init;
use crate::replica_sync::{self, SumLink, replica_sum};

/// The two batch norms of mmcv's `norm_cfg`, which differ only under data parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchNormKind {
    /// `BN`: each replica normalises with the statistics of its own batch (PyTorch's
    /// `BatchNorm2d` under DistributedDataParallel).
    Local,
    /// `SyncBN`: every replica normalises with the statistics of all replicas' batches
    /// together (PyTorch's `SyncBatchNorm`). On one device the same as `Local`.
    Sync,
}

impl BatchNormKind {
    /// The kind a `norm_cfg.type` names (`BN`, `SyncBN`), if it is a batch norm.
    pub fn from_type(name: &str) -> Option<Self> {
        match name {
            "BN" => Some(Self::Local),
            "SyncBN" => Some(Self::Sync),
            _ => None,
        }
    }
}

/// An mmcv `norm_cfg` (`type`, `requires_grad`), as the mmseg decode heads and the mmdet box
/// heads take it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormCfg {
    #[serde(rename = "type")]
    pub type_name: String,
    #[serde(default = "requires_grad_default")]
    pub requires_grad: bool,
}

fn requires_grad_default() -> bool {
    true
}

impl NormCfg {
    /// The batch norm `type` names, if it is one (`BN`, `SyncBN`).
    pub fn batch_norm_kind(&self) -> Option<BatchNormKind> {
        BatchNormKind::from_type(&self.type_name)
    }
}

/// `nn.BatchNorm2d` with PyTorch's names: `weight`, `bias` (trainable), `running_mean`,
/// `running_var` (buffers, never trained; `num_batches_tracked` is not kept). eps 1e-5,
/// momentum 0.1.
///
/// `training = true` normalises with the batch statistics (biased variance) and updates the
/// running statistics with the unbiased variance, as PyTorch does; `training = false` uses
/// the running statistics.
///
/// Built as `SyncBN` ([`BatchNormKind::Sync`]) and trained by one of several data-parallel
/// replicas ([`replica_sync::current`]), the batch statistics are those of every replica's
/// batch: the per-channel sums, then the sums of squared deviations from the joint mean,
/// are summed across the replicas with a differentiable exchange, so the gradients also
/// flow through the other replicas' use of the statistics, as with PyTorch's
/// `SyncBatchNorm`. Every replica then holds the same running statistics.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub running_mean: RunningBuffer<1>,
    pub running_var: RunningBuffer<1>,
    /// Whether the batch statistics are synchronised across replicas (`SyncBN`).
    sync: bool,
}

impl BatchNorm2d {
    pub const EPS: f64 = 1e-5;
    pub const MOMENTUM: f64 = 0.1;

    /// A `BN` with weight 1, bias 0, running mean 0, running var 1 (PyTorch defaults and
    /// mmcv's `constant_init(bn, 1)`).
    pub fn new(channels: usize, device: &Device) -> Self {
        Self {
            weight: init::constant([channels], 1.0, device),
            bias: init::constant([channels], 0.0, device),
            running_mean: RunningBuffer::new(Tensor::zeros([channels], device)),
            running_var: RunningBuffer::new(Tensor::ones([channels], device)),
            sync: false,
        }
    }

    /// The same norm as `kind` (`SyncBN` or `BN`).
    pub fn with_kind(mut self, kind: BatchNormKind) -> Self {
        self.sync = kind == BatchNormKind::Sync;
        self
    }

    /// Whether `key`'s last segment names a buffer rather than a trainable parameter.
    pub fn is_buffer(key: &str) -> bool {
        key.ends_with(".running_mean") || key.ends_with(".running_var")
    }

    pub fn forward(&self, x: Tensor<4>, training: bool) -> Tensor<4> {
        let [_, c, _, _] = x.dims();
        let (mean, var) = if training {
            let (mean, var, unbiased) = self.batch_stats(&x);
            // The statistics may sit on another device than this input when a checkpoint
            // was loaded there; read them where the update is computed.
            let device = x.device();
            let rm = self.running_mean.value().to_device(&device);
            let rv = self.running_var.value().to_device(&device);
            self.running_mean
                .set(rm * (1.0 - Self::MOMENTUM) + mean.clone().detach() * Self::MOMENTUM);
            self.running_var
                .set(rv * (1.0 - Self::MOMENTUM) + unbiased * Self::MOMENTUM);
            (mean, var)
        } else {
            let device = x.device();
            (
                self.running_mean.value().to_device(&device),
                self.running_var.value().to_device(&device),
            )
        };
        let scale = self.weight.val() / (var + Self::EPS).sqrt();
        let shift = self.bias.val() - mean * scale.clone();
        x * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1])
    }

    /// The batch's per-channel mean and biased variance, and the unbiased variance (detached)
    /// for the running statistics: over this batch, or over every replica's for `SyncBN`.
    fn batch_stats(&self, x: &Tensor<4>) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        let [b, c, h, w] = x.dims();
        let n = b * h * w;
        // (B, C, H, W) → (C, B·H·W)
        let flat = x.clone().swap_dims(0, 1).reshape([c, n]);
        // SyncBN: over the replicas of this thread's group, else over the processes of a
        // distributed run
        let threads = self
            .sync
            .then(replica_sync::current)
            .flatten()
            .filter(|(group, _)| group.world() > 1);
        let processes =
            self.sync && threads.is_none() && crate::dist::current().is_some_and(|g| g.world() > 1);
        let link = || match &threads {
            Some((group, rank)) => SumLink::forward(group.clone(), *rank),
            None => SumLink::across_processes(),
        };
        if threads.is_none() && !processes {
            let mean = flat.clone().mean_dim(1).reshape([c]);
            let centred = flat - mean.clone().reshape([c, 1]);
            let var = centred.powi_scalar(2).mean_dim(1).reshape([c]);
            let unbiased = var.clone().detach() * (n as f64 / (n.max(2) - 1) as f64);
            return (mean, var, unbiased);
        }
        // The element count travels with the sums: replicas may hold batches of different
        // sizes (detection RoIs).
        let count = Tensor::<1>::full([1], n as f64, &x.device());
        let local = Tensor::cat(vec![flat.clone().sum_dim(1).reshape([c]), count], 0);
        let total = replica_sum(local, link());
        let m = total.clone().slice(c..c + 1).detach();
        let mean = total.slice(0..c) / m.clone();
        let centred = flat - mean.clone().reshape([c, 1]);
        let squares = centred.powi_scalar(2).sum_dim(1).reshape([c]);
        let var = replica_sum(squares, link()) / m.clone();
        let unbiased = var.clone().detach() * m.clone() / (m - 1.0).clamp_min(1.0);
        (mean, var, unbiased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn train_mode_uses_batch_stats_and_updates_running_stats() {
        let device = Device::flex();
        let bn = BatchNorm2d::new(1, &device);
        // one channel, values 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3.
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1f32, 2., 3., 4.], [1, 1, 2, 2]),
            &device,
        );
        let y: Vec<f32> = bn
            .forward(x.clone(), true)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let expected = (1.0f32 - 2.5) / (1.25f32 + 1e-5).sqrt();
        assert!((y[0] - expected).abs() < 1e-5);
        let rm: Vec<f32> = bn
            .running_mean
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let rv: Vec<f32> = bn
            .running_var
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((rm[0] - 0.25).abs() < 1e-6);
        assert!((rv[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
        // eval mode uses the running statistics.
        let z: Vec<f32> = bn
            .forward(x, false)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((z[0] - (1.0 - 0.25) / (rv[0] + 1e-5).sqrt()).abs() < 1e-5);
    }

    /// What a checkpoint writes (the module visitor) holds the latest update.
    #[test]
    fn saved_running_stats_include_the_last_update() {
        let device = Device::flex();
        let bn = BatchNorm2d::new(1, &device);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1f32, 2., 3., 4.], [1, 1, 2, 2]),
            &device,
        );
        let _ = bn.forward(x, true);
        let saved = crate::params::param_data(&bn, &|k| k == "running_mean");
        let rm: Vec<f32> = saved[0].1.clone().try_to_vec::<f32>().unwrap();
        assert!((rm[0] - 0.25).abs() < 1e-6, "{rm:?}");
    }
}
