//! Adapters defined outside this crate.
//!
//! A plugin writes its adapter as an ordinary `#[derive(Module)]` struct with named
//! sub-modules and implements [`Adapter`] for it; [`AdapterModule::plugin`] erases its type
//! (see [`crate::dyn_module`]) so that it fits the block's adapter slot. Its parameters then
//! live under `my_module_{1,2}.<its field names>`, and are saved, loaded, frozen, forked and
//! optimised like every built-in adapter's.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;

use super::AdapterModule;
use crate::dyn_module::{DynModule, UnsupportedRank};

/// An adapter module: what a plugin implements for its `#[derive(Module)]` type.
pub trait Adapter: Module + ModuleDisplay + Sync + 'static {
    /// `x` is `B×N×C` with `N = H·W` (the unpadded stage resolution `hw`); returns `B×N×C`.
    fn forward(&self, x: Tensor<3>, hw: (usize, usize), training: bool) -> Tensor<3>;
}

/// The functions a block calls on a plugin adapter, filled in for its concrete type.
#[derive(Clone, Copy, Debug)]
pub struct AdapterOps {
    forward: fn(&PluginAdapter, Tensor<3>, (usize, usize), bool) -> Tensor<3>,
}

/// A plugin's adapter, its type erased.
pub type PluginAdapter = DynModule<AdapterOps>;

impl AdapterModule {
    /// Puts a plugin's adapter into a slot. Fails only for a parameter of rank above
    /// [`crate::dyn_module::MAX_RANK`].
    pub fn plugin<A: Adapter>(adapter: A) -> Result<Self, UnsupportedRank> {
        let ops = AdapterOps {
            forward: |m, x, hw, training| match m.get::<A>() {
                Some(a) => a.forward(x, hw, training),
                // The ops are built here together with the module they are given, so the
                // type always matches.
                None => unreachable!("an AdapterOps travels with its own module type"),
            },
        };
        DynModule::new(adapter, ops).map(AdapterModule::Plugin)
    }
}

/// Runs a plugin adapter.
pub(super) fn forward(
    m: &PluginAdapter,
    x: Tensor<3>,
    hw: (usize, usize),
    training: bool,
) -> Tensor<3> {
    (m.ops().forward)(m, x, hw, training)
}
