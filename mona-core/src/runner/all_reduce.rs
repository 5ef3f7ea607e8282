//! Averaging the replicas' gradients (see [`super::parallel::AllReduce`]).
//!
//! Both ways give a parameter the mean of its gradients over all the replicas, a replica
//! without a gradient for it (a branch unused on its batch) counting as zero, as DDP does;
//! a parameter no replica has a gradient for gets none.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::distributed::{ReduceOperation, all_reduce};
use burn::tensor::{Device, Tensor, TensorData};

use crate::dist::{DistError, ProcessGroup};

/// One replica's gradients in host memory, one slot per float parameter in the model's
/// visit order (the same in every replica: they are forks of one model).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostGrads(Vec<Option<HostGrad>>);

#[derive(Debug, Clone, PartialEq)]
struct HostGrad {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// Moves `grads` to the host (this waits for the backward pass to finish).
pub fn grads_to_host<M: Module>(model: &M, grads: GradientsParams) -> HostGrads {
    struct ToHost {
        grads: GradientsParams,
        out: Vec<Option<HostGrad>>,
    }
    impl ModuleVisitor for ToHost {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let grad = self.grads.remove::<D>(param.id).map(|g| {
                let data = g.into_data().convert::<f32>();
                HostGrad {
                    shape: data.shape().to_vec(),
                    values: data.try_into_vec::<f32>().expect("converted to f32"),
                }
            });
            self.out.push(grad);
        }
    }
    let mut visitor = ToHost {
        grads,
        out: Vec::new(),
    };
    model.visit(&mut visitor);
    HostGrads(visitor.out)
}

/// The mean of the replicas' gradients, summed in rank order (so the result does not
/// depend on which replica finished first).
pub fn mean_of(parts: &[HostGrads]) -> HostGrads {
    let n = parts.len().max(1);
    let slots = parts.iter().map(|p| p.0.len()).max().unwrap_or(0);
    let mean = (0..slots)
        .map(|i| {
            let mut sum: Option<HostGrad> = None;
            for grad in parts.iter().filter_map(|p| p.0.get(i)?.as_ref()) {
                match &mut sum {
                    None => sum = Some(grad.clone()),
                    Some(s) => {
                        assert_eq!(s.shape, grad.shape, "replicas disagree on a gradient shape");
                        for (a, b) in s.values.iter_mut().zip(&grad.values) {
                            *a += *b;
                        }
                    }
                }
            }
            sum.map(|mut s| {
                for v in &mut s.values {
                    *v /= n as f32;
                }
                s
            })
        })
        .collect();
    HostGrads(mean)
}

/// The shapes of `model`'s float parameters, in visit order (the slots of [`HostGrads`]).
fn param_shapes<M: Module>(model: &M) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl ModuleVisitor for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.dims().to_vec());
        }
    }
    let mut visitor = Shapes(Vec::new());
    model.visit(&mut visitor);
    visitor.0
}

/// The mean of `grads` over the processes of `group` (every rank calls this at the same
/// iteration): a first sum over a presence vector tells the ranks which parameters have a
/// gradient anywhere; those are packed into one buffer (zeros where this rank has none),
/// summed by the group, divided by the world size, as [`mean_of`] does for threads.
pub fn process_mean<M: Module>(
    model: &M,
    grads: GradientsParams,
    group: &dyn ProcessGroup,
    device: &Device,
) -> Result<GradientsParams, DistError> {
    let HostGrads(local) = grads_to_host(model, grads);
    let shapes = param_shapes(model);
    let mut presence: Vec<f32> = local
        .iter()
        .map(|g| f32::from(u8::from(g.is_some())))
        .collect();
    group.all_reduce_sum_f32("gradient presence", &mut presence)?;
    let mut flat = Vec::new();
    for (slot, present) in presence.iter().enumerate() {
        if *present == 0.0 {
            continue;
        }
        match &local[slot] {
            Some(g) => flat.extend_from_slice(&g.values),
            None => flat.resize(flat.len() + shapes[slot].iter().product::<usize>(), 0.0),
        }
    }
    group.all_reduce_sum_f32("gradients", &mut flat)?;
    let n = group.world().max(1) as f32;
    let mut at = 0;
    let mean = presence
        .iter()
        .enumerate()
        .map(|(slot, present)| {
            (*present > 0.0).then(|| {
                let len = shapes[slot].iter().product::<usize>();
                let values = flat[at..at + len].iter().map(|v| v / n).collect();
                at += len;
                HostGrad {
                    shape: shapes[slot].clone(),
                    values,
                }
            })
        })
        .collect();
    Ok(grads_from_host(model, &HostGrads(mean), device))
}

/// `grads` as gradients of `model`'s parameters on `device` (its inner device is used).
pub fn grads_from_host<M: Module>(
    model: &M,
    grads: &HostGrads,
    device: &Device,
) -> GradientsParams {
    struct FromHost<'a> {
        grads: &'a HostGrads,
        device: Device,
        index: usize,
        out: GradientsParams,
    }
    impl ModuleVisitor for FromHost<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(Some(g)) = self.grads.0.get(self.index) {
                let data = TensorData::new(g.values.clone(), g.shape.clone());
                self.out
                    .register(param.id, Tensor::<D>::from_data(data, &self.device));
            }
            self.index += 1;
        }
    }
    let mut visitor = FromHost {
        grads,
        device: device.clone().without_autodiff(),
        index: 0,
        out: GradientsParams::new(),
    };
    model.visit(&mut visitor);
    visitor.out
}

/// The mean of `grads` over `devices` (every replica's device, the same list on each), with
/// NCCL through burn's collective; every replica must call this at the same iteration.
/// A first all-reduce over a presence vector tells the replicas which parameters have a
/// gradient anywhere, so all of them take part in the same reductions.
pub fn nccl_mean<M: Module>(
    model: &M,
    grads: GradientsParams,
    devices: &[Device],
) -> GradientsParams {
    let inner: Vec<Device> = devices
        .iter()
        .map(|d| d.clone().without_autodiff())
        .collect();
    // Which parameters this replica has a gradient for, in visit order.
    struct Presence<'a> {
        grads: &'a GradientsParams,
        flags: Vec<f32>,
    }
    impl ModuleVisitor for Presence<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let has = self.grads.get::<D>(param.id).is_some();
            self.flags.push(if has { 1.0 } else { 0.0 });
        }
    }
    let mut presence = Presence {
        grads: &grads,
        flags: Vec::new(),
    };
    model.visit(&mut presence);
    let flags = presence.flags;
    let Some(device) = model.devices().into_iter().next() else {
        return grads;
    };
    let device = device.without_autodiff();

    struct Reduce<'a> {
        grads: GradientsParams,
        present: &'a [f32],
        devices: &'a [Device],
        device: &'a Device,
        index: usize,
        out: GradientsParams,
    }
    impl ModuleVisitor for Reduce<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let index = self.index;
            self.index += 1;
            if self.present[index] == 0.0 {
                return;
            }
            let grad = self
                .grads
                .remove::<D>(param.id)
                .unwrap_or_else(|| Tensor::zeros(param.val().dims(), self.device));
            let mean = all_reduce(grad, ReduceOperation::Mean, self.devices.to_vec()).resolve();
            self.out.register(param.id, mean);
        }
    }
    let n = flags.len();
    let flags = Tensor::<1>::from_data(TensorData::new(flags, [n]), &device);
    let present = all_reduce(flags, ReduceOperation::Sum, inner.clone())
        .resolve()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32");
    let mut reduce = Reduce {
        grads,
        present: &present,
        devices: &inner,
        device: &device,
        index: 0,
        out: GradientsParams::new(),
    };
    model.visit(&mut reduce);
    reduce.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Linear;

    fn grads_of(model: &Linear, scale: f32) -> GradientsParams {
        let device = Device::flex();
        let mut grads = GradientsParams::new();
        let w = model.weight.val().dims();
        let n = w[0] * w[1];
        let values: Vec<f32> = (0..n).map(|i| i as f32 * scale).collect();
        grads.register(
            model.weight.id,
            Tensor::<2>::from_data(TensorData::new(values, w), &device),
        );
        grads
    }

    #[test]
    fn host_mean_round_trips_and_counts_missing_gradients_as_zero() {
        let device = Device::flex();
        let model = Linear::torch_default(2, 3, true, &device);
        let a = grads_to_host(&model, grads_of(&model, 1.0));
        let b = grads_to_host(&model, grads_of(&model, 3.0));
        // A replica without any gradient (all its branches unused).
        let none = grads_to_host(&model, GradientsParams::new());
        assert_eq!(a.0.len(), 2, "weight and bias slots");
        assert!(a.0[1].is_none(), "no bias gradient");

        let mean = grads_from_host(&model, &mean_of(&[a.clone(), b]), &device);
        let w: Vec<f32> = mean
            .get::<2>(model.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(w, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let bias = model.bias.as_ref().unwrap();
        assert!(
            mean.get::<1>(bias.id).is_none(),
            "no replica had a bias gradient"
        );

        let with_missing = grads_from_host(&model, &mean_of(&[a, none]), &device);
        let w: Vec<f32> = with_missing
            .get::<2>(model.weight.id)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(w, vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    }
}
