//! A non-trainable buffer that the forward pass updates (BatchNorm's running statistics).
//!
//! burn's `RunningState` does not fit data-parallel training: every copy of a module made
//! with `clone`, `fork` or `to_device` keeps sharing one cell, so replicas on several
//! devices would write into each other's statistics (from several threads, in whatever
//! order they run), and it keeps each thread's update apart until a `value_sync`, so a
//! checkpoint read through the module visitor could miss the last update. Here only
//! `clone` shares the cell (the forward pass updates the model it is called on); every
//! transformation that returns a new module (`fork`, `to_device`, `map`, `valid`, `train`)
//! gives it a cell of its own, and an update is visible at once.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param,
    ParamId,
};
use burn::tensor::{Device, Tensor};

/// A tensor buffer, saved under its field name like a parameter, never trained.
#[derive(Clone, Debug)]
pub struct RunningBuffer<const D: usize> {
    id: ParamId,
    value: Arc<Mutex<Tensor<D>>>,
}

impl<const D: usize> RunningBuffer<D> {
    pub fn new(value: Tensor<D>) -> Self {
        Self::with_id(ParamId::new(), value)
    }

    fn with_id(id: ParamId, value: Tensor<D>) -> Self {
        Self {
            id,
            value: Arc::new(Mutex::new(value)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tensor<D>> {
        // A poisoned lock still holds a whole tensor (assignment cannot be torn).
        self.value.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current value.
    pub fn value(&self) -> Tensor<D> {
        self.lock().clone()
    }

    /// Replaces the value (seen by this module and its clones).
    pub fn set(&self, value: Tensor<D>) {
        *self.lock() = value;
    }

    /// A copy with its own cell holding `value`.
    fn detached(&self, value: Tensor<D>) -> Self {
        Self::with_id(self.id, value)
    }
}

impl<const D: usize> fmt::Display for RunningBuffer<D> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RunningBuffer(id={})", self.id)
    }
}

impl<const D: usize> ModuleDisplayDefault for RunningBuffer<D> {
    fn content(&self, content: Content) -> Option<Content> {
        content
            .add_formatted(&"RunningBuffer".to_string())
            .optional()
    }
}

impl<const D: usize> ModuleDisplay for RunningBuffer<D> {}

impl<const D: usize> Module for RunningBuffer<D> {
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        visitor.visit_float(&Param::initialized(self.id, self.value()));
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let param = mapper.map_float(Param::initialized(self.id, self.value()));
        let (_, value, _) = param.consume();
        // A buffer, not an optimizer target: mappers may change it, never make it trainable.
        self.detached(value.set_require_grad(false))
    }

    fn to_device(self, device: &Device) -> Self {
        let value = self.value().to_device(device);
        self.detached(value)
    }

    fn fork(self, device: &Device) -> Self {
        self.to_device(device)
    }

    fn collect_devices(&self, mut devices: Vec<Device>) -> Vec<Device> {
        let device = self.value().device();
        if !devices.contains(&device) {
            devices.push(device);
        }
        devices
    }

    fn materialize(self) -> Self {
        self
    }

    fn valid(&self) -> Self {
        self.detached(self.value().without_autodiff())
    }

    fn train(self) -> Self {
        let value = Tensor::from_inner(self.value());
        self.detached(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn read(b: &RunningBuffer<1>) -> Vec<f32> {
        b.value().into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn clones_share_the_cell_and_forks_do_not() {
        let device = Device::flex();
        let a = RunningBuffer::new(Tensor::<1>::zeros([2], &device));
        let shared = a.clone();
        let forked = a.clone().fork(&device);
        a.set(Tensor::from_data(
            TensorData::new(vec![1f32, 2.], [2]),
            &device,
        ));
        assert_eq!(read(&shared), vec![1.0, 2.0]);
        assert_eq!(read(&forked), vec![0.0, 0.0]);
        forked.set(Tensor::from_data(
            TensorData::new(vec![5f32, 5.], [2]),
            &device,
        ));
        assert_eq!(read(&a), vec![1.0, 2.0]);
        // The visitor (what checkpoints read) sees the latest value.
        let saved = crate::params::param_data(&a, &|_| true);
        assert_eq!(
            saved[0].1.clone().try_to_vec::<f32>().unwrap(),
            vec![1.0, 2.0]
        );
    }
}
