//! Data-parallel training on several devices of one machine (`train --gpus N`).
//!
//! As PyTorch's DistributedDataParallel: every device holds a replica of the model (forked
//! once, at the start) with its own copy of the optimizer, and takes one batch per
//! iteration (the config's per-GPU batch, as mmcv's distributed sampler gives every rank
//! its own samples). Each replica runs forward and backward on its own thread
//! ([`super::replica`]), the gradients are averaged across the replicas ([`AllReduce`]),
//! and every replica takes the same optimizer step with the same averaged gradients, so the
//! weights stay identical without being copied around. The averaged gradient is the
//! gradient of the mean loss over all the devices' samples, so a run on N devices with
//! batch B matches a run on one device with batch N·B up to summation order (the test
//! checks this). `SyncBN` layers sum their batch statistics across the replicas mid-pass
//! ([`crate::replica_sync`]), so that holds for them too and their running statistics agree;
//! plain `BN` keeps per-replica statistics. The checkpoints and evaluations use the first
//! device's replica, whose plain-BN running statistics are those of its own batches, as with
//! PyTorch DDP's buffers.
//!
//! burn 0.22.1 has no multi-node launcher and no rank environment, so training across
//! machines is not supported (see the README for what to do instead). The reduction is one
//! function per [`AllReduce`] variant (`all_reduce.rs`); a collective across machines,
//! once burn has one, is a third variant with the same contract.

use std::str::FromStr;

use burn::tensor::Device;

use crate::task::DeviceError;

/// How the replicas average their gradients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllReduce {
    /// Through host memory, summed in rank order by the first device's thread: every rank
    /// receives bit-identical gradients; works on every backend (the CPU included). Each
    /// iteration copies the trainable parameters' gradients to the host and back.
    #[default]
    Host,
    /// NCCL's all-reduce through burn's collective (`burn::tensor::distributed::all_reduce`,
    /// mean), device to device. CUDA devices only: NCCL (`libnccl.so`) must be loadable.
    Nccl,
}

impl AllReduce {
    /// The default for a main device named `device_name` (`--device`): NCCL on CUDA.
    pub fn default_for(device_name: &str) -> Self {
        if device_name.starts_with("cuda") {
            Self::Nccl
        } else {
            Self::Host
        }
    }
}

impl FromStr for AllReduce {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(Self::Host),
            "nccl" => Ok(Self::Nccl),
            other => Err(format!("--all-reduce {other}: expected `host` or `nccl`")),
        }
    }
}

/// The data-parallel part of a run: none by default.
#[derive(Debug, Clone, Default)]
pub struct DataParallel {
    /// Devices besides the main one that train replicas (empty: one device).
    pub replicas: Vec<Device>,
    pub all_reduce: AllReduce,
}

impl DataParallel {
    /// Devices in all, the main one included.
    pub fn world_size(&self) -> usize {
        1 + self.replicas.len()
    }

    /// Checks that `all_reduce` can run on `devices` (the main one first).
    pub fn check(&self, main_name: &str) -> Result<(), DeviceError> {
        if self.all_reduce == AllReduce::Nccl && !main_name.starts_with("cuda") {
            return Err(DeviceError::NcclWithoutCuda(main_name.to_string()));
        }
        Ok(())
    }
}

/// Parses `--gpus N` for a device: `cuda:K` gives `cuda:K .. cuda:K+N-1`; a CPU device gives
/// N replicas on the CPU (useful to test a multi-GPU config on a laptop).
pub fn replica_devices(
    main: &Device,
    main_name: &str,
    gpus: usize,
) -> Result<Vec<Device>, DeviceError> {
    if gpus <= 1 {
        return Ok(Vec::new());
    }
    let first = match main_name.strip_prefix("cuda") {
        Some(rest) => rest.trim_start_matches(':').parse::<usize>().unwrap_or(0),
        None => return Ok(vec![main.clone(); gpus - 1]),
    };
    (first + 1..first + gpus)
        .map(|i| crate::task::parse_device(&format!("cuda:{i}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reduce_kinds_parse_and_default_by_device() {
        assert_eq!("host".parse::<AllReduce>(), Ok(AllReduce::Host));
        assert_eq!("nccl".parse::<AllReduce>(), Ok(AllReduce::Nccl));
        assert_eq!(
            "mpi".parse::<AllReduce>().unwrap_err(),
            "--all-reduce mpi: expected `host` or `nccl`"
        );
        assert_eq!(AllReduce::default_for("cuda:0"), AllReduce::Nccl);
        assert_eq!(AllReduce::default_for("cpu"), AllReduce::Host);
        let nccl_on_cpu = DataParallel {
            replicas: vec![Device::flex()],
            all_reduce: AllReduce::Nccl,
        };
        assert_eq!(
            nccl_on_cpu.check("cpu").unwrap_err().to_string(),
            "--all-reduce nccl needs CUDA devices; --device is cpu (use --all-reduce host)"
        );
        assert_eq!(nccl_on_cpu.world_size(), 2);
    }
}
