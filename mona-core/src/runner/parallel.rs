//! Data-parallel training on several devices of one machine (`train --gpus N`).
//!
//! Each iteration takes one batch per device (the config's per-GPU batch, as mmcv's
//! distributed sampler gives every rank its own samples), runs forward and backward on a
//! replica of the model forked to that device, moves the gradients to the main device and
//! averages them, and steps the optimizer once there; the replicas are forked afresh from the
//! updated model at the next iteration, so every device always trains the same weights. The
//! averaged gradient equals the gradient of the mean loss over all the devices' samples, so a
//! run on N devices with batch B matches a run on one device with batch N·B up to summation
//! order (the test checks this) — as PyTorch DDP does, and with the same caveat: BatchNorm
//! statistics are per device (mmseg's SyncBN is not reproduced).
//!
//! The replicas are driven from the training thread one after the other: device work is
//! asynchronous, so their kernels still overlap, and the process-wide RNG of the CPU backend
//! draws in a fixed order, which keeps runs reproducible. The reduction copies gradients
//! through the main device rather than an NCCL all-reduce: burn 0.22.1's collective
//! (`burn::tensor::distributed::all_reduce`) needs one thread per device and has no CPU
//! implementation, so it could not be tested here; `average_grads` is the single place to
//! swap it in. burn 0.22.1 has no multi-node launcher, so training across machines is not
//! supported (see the README).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor};

/// Averages per-device gradients (already on the main device) into one set: a parameter
/// without a gradient on some device (unused there) counts as zero, as DDP does.
pub fn average_grads<M: Module>(model: &M, parts: Vec<GradientsParams>) -> GradientsParams {
    let n = parts.len().max(1);
    let mut visitor = Averager {
        parts,
        out: GradientsParams::new(),
        n,
    };
    model.visit(&mut visitor);
    visitor.out
}

struct Averager {
    parts: Vec<GradientsParams>,
    out: GradientsParams,
    n: usize,
}

impl ModuleVisitor for Averager {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let id = param.id;
        let mut sum: Option<Tensor<D>> = None;
        for part in &mut self.parts {
            if let Some(g) = part.remove::<D>(id) {
                sum = Some(match sum {
                    Some(s) => s + g,
                    None => g,
                });
            }
        }
        if let Some(sum) = sum {
            self.out.register(id, sum / self.n as f64);
        }
    }
}

/// Parses `--gpus N` for a device: `cuda:K` gives `cuda:K .. cuda:K+N-1`; a CPU device gives
/// N replicas on the CPU (useful to test a multi-GPU config on a laptop).
pub fn replica_devices(main: &Device, main_name: &str, gpus: usize) -> Result<Vec<Device>, String> {
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
