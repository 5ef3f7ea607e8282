//! Modules whose concrete type is chosen at run time: how a registry stays open to crates the
//! core does not know.
//!
//! burn's [`Module`] is not object-safe (its visitor and mapper methods are generic over the
//! tensor rank), so a model cannot simply hold a `Box<dyn Module>`. Two ways out exist:
//!
//! - make every model generic over each of its parts, and let a registration produce
//!   type-erased task functions per combination (what [`crate::task::ModelEntry`] does for
//!   whole models);
//! - erase the part itself, keep the model's field types fixed, and cross the erased boundary
//!   with object-safe visitor and mapper traits that carry the rank as a value.
//!
//! The parts a plugin adds (an adapter inside every Swin block, a decode head) sit inside
//! models that are themselves chosen by name, so the generic way would multiply the model
//! types by every plugin part. This module takes the second way, which burn itself uses for
//! parameter reparameterizations: [`DynModule`] holds any `#[derive(Module)]` value, forwards
//! every traversal to it with the rank restored, and so saves, loads, freezes, forks, moves and
//! optimises its parameters under the plugin's own field names, exactly as a built-in part's.
//!
//! What the part *does* is given by `Ops`, a small table of plain functions the registering
//! crate fills for its concrete type (an adapter's forward, a head's forward); the functions
//! downcast the erased module back with [`DynModule::get`], which cannot fail for a module
//! built by the same constructor.

use std::any::Any;
use std::fmt::Debug;

use burn::module::{
    Content, Devices, Flag, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper,
    ModuleVisitor, Param,
};
use burn::tensor::{Bool, Device, Int, Tensor};

/// The largest tensor rank a [`DynModule`] carries across the erased boundary.
pub const MAX_RANK: usize = 8;

/// A module holds a parameter of a rank [`DynModule`] cannot carry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{module}: parameter {key} has rank {rank}; run-time chosen modules carry ranks 0 to {MAX_RANK}"
)]
pub struct UnsupportedRank {
    pub module: &'static str,
    pub key: String,
    pub rank: usize,
}

/// A borrowed parameter of rank `rank`, its type erased.
pub struct DynParamRef<'a> {
    rank: usize,
    value: &'a dyn Any,
}

/// An owned parameter of rank `rank`, its type erased (mapping consumes and returns it).
pub struct DynParam {
    rank: usize,
    value: Box<dyn Any + Send>,
}

impl DynParam {
    fn new<T: Any + Send>(rank: usize, value: T) -> Self {
        Self {
            rank,
            value: Box::new(value),
        }
    }

    /// The parameter back at its static type. The rank and kind travel with the value, so the
    /// type always matches: both sides of the boundary are this module's own code.
    fn into_typed<T: Any>(self) -> T {
        *self
            .value
            .downcast::<T>()
            .expect("an erased parameter keeps its rank and kind")
    }
}

/// The object-safe form of [`ModuleVisitor`].
pub trait DynVisitor {
    fn visit_float(&mut self, param: DynParamRef<'_>);
    fn visit_int(&mut self, param: DynParamRef<'_>);
    fn visit_bool(&mut self, param: DynParamRef<'_>);
    fn visit_flag(&mut self, flag: &Param<Flag>);
    fn enter_module(&mut self, name: &str, container_type: &str);
    fn exit_module(&mut self, name: &str, container_type: &str);
}

/// The object-safe form of [`ModuleMapper`].
pub trait DynMapper {
    fn map_float(&mut self, param: DynParam) -> DynParam;
    fn map_int(&mut self, param: DynParam) -> DynParam;
    fn map_bool(&mut self, param: DynParam) -> DynParam;
    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag>;
    fn enter_module(&mut self, name: &str, container_type: &str);
    fn exit_module(&mut self, name: &str, container_type: &str);
}

/// Runs `$body` with the const `$d` equal to the run-time rank `$rank` (0 ..= [`MAX_RANK`]).
macro_rules! with_rank {
    ($rank:expr, $d:ident => $body:block) => {
        match $rank {
            0 => {
                const $d: usize = 0;
                $body
            }
            1 => {
                const $d: usize = 1;
                $body
            }
            2 => {
                const $d: usize = 2;
                $body
            }
            3 => {
                const $d: usize = 3;
                $body
            }
            4 => {
                const $d: usize = 4;
                $body
            }
            5 => {
                const $d: usize = 5;
                $body
            }
            6 => {
                const $d: usize = 6;
                $body
            }
            7 => {
                const $d: usize = 7;
                $body
            }
            8 => {
                const $d: usize = 8;
                $body
            }
            // `DynModule::new` refuses modules with other ranks, so none reaches here.
            other => unreachable!("rank {other} passed DynModule::new's check"),
        }
    };
}

/// The erased module calls a typed visitor through this: rank as a value → rank as a const.
struct TypedVisitor<'a, V>(&'a mut V);

impl<V: ModuleVisitor> DynVisitor for TypedVisitor<'_, V> {
    fn visit_float(&mut self, p: DynParamRef<'_>) {
        with_rank!(p.rank, D => {
            if let Some(param) = p.value.downcast_ref::<Param<Tensor<D>>>() {
                self.0.visit_float(param);
            }
        })
    }
    fn visit_int(&mut self, p: DynParamRef<'_>) {
        with_rank!(p.rank, D => {
            if let Some(param) = p.value.downcast_ref::<Param<Tensor<D, Int>>>() {
                self.0.visit_int(param);
            }
        })
    }
    fn visit_bool(&mut self, p: DynParamRef<'_>) {
        with_rank!(p.rank, D => {
            if let Some(param) = p.value.downcast_ref::<Param<Tensor<D, Bool>>>() {
                self.0.visit_bool(param);
            }
        })
    }
    fn visit_flag(&mut self, flag: &Param<Flag>) {
        self.0.visit_flag(flag);
    }
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.enter_module(name, container_type);
    }
    fn exit_module(&mut self, name: &str, container_type: &str) {
        self.0.exit_module(name, container_type);
    }
}

/// The concrete module's generic visits, erased for a [`DynVisitor`].
struct ErasingVisitor<'a>(&'a mut dyn DynVisitor);

impl ModuleVisitor for ErasingVisitor<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.visit_float(DynParamRef {
            rank: D,
            value: param,
        });
    }
    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        self.0.visit_int(DynParamRef {
            rank: D,
            value: param,
        });
    }
    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        self.0.visit_bool(DynParamRef {
            rank: D,
            value: param,
        });
    }
    fn visit_flag(&mut self, flag: &Param<Flag>) {
        self.0.visit_flag(flag);
    }
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.enter_module(name, container_type);
    }
    fn exit_module(&mut self, name: &str, container_type: &str) {
        self.0.exit_module(name, container_type);
    }
}

/// The erased module calls a typed mapper through this.
struct TypedMapper<'a, M>(&'a mut M);

impl<M: ModuleMapper> DynMapper for TypedMapper<'_, M> {
    fn map_float(&mut self, p: DynParam) -> DynParam {
        let rank = p.rank;
        with_rank!(rank, D => {
            DynParam::new(D, self.0.map_float(p.into_typed::<Param<Tensor<D>>>()))
        })
    }
    fn map_int(&mut self, p: DynParam) -> DynParam {
        let rank = p.rank;
        with_rank!(rank, D => {
            DynParam::new(D, self.0.map_int(p.into_typed::<Param<Tensor<D, Int>>>()))
        })
    }
    fn map_bool(&mut self, p: DynParam) -> DynParam {
        let rank = p.rank;
        with_rank!(rank, D => {
            DynParam::new(D, self.0.map_bool(p.into_typed::<Param<Tensor<D, Bool>>>()))
        })
    }
    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        self.0.map_flag(flag)
    }
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.enter_module(name, container_type);
    }
    fn exit_module(&mut self, name: &str, container_type: &str) {
        self.0.exit_module(name, container_type);
    }
}

/// The concrete module's generic maps, erased for a [`DynMapper`].
struct ErasingMapper<'a>(&'a mut dyn DynMapper);

impl ModuleMapper for ErasingMapper<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.0.map_float(DynParam::new(D, param)).into_typed()
    }
    fn map_int<const D: usize>(&mut self, param: Param<Tensor<D, Int>>) -> Param<Tensor<D, Int>> {
        self.0.map_int(DynParam::new(D, param)).into_typed()
    }
    fn map_bool<const D: usize>(
        &mut self,
        param: Param<Tensor<D, Bool>>,
    ) -> Param<Tensor<D, Bool>> {
        self.0.map_bool(DynParam::new(D, param)).into_typed()
    }
    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        self.0.map_flag(flag)
    }
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.0.enter_module(name, container_type);
    }
    fn exit_module(&mut self, name: &str, container_type: &str) {
        self.0.exit_module(name, container_type);
    }
}

/// [`Module`] in object-safe form, implemented for every module type.
trait ErasedModule: Debug + Send + Sync {
    fn visit_dyn(&self, visitor: &mut dyn DynVisitor);
    fn map_dyn(self: Box<Self>, mapper: &mut dyn DynMapper) -> Box<dyn ErasedModule>;
    fn collect_devices_dyn(&self, devices: Devices) -> Devices;
    fn fork_dyn(self: Box<Self>, device: &Device) -> Box<dyn ErasedModule>;
    fn to_device_dyn(self: Box<Self>, device: &Device) -> Box<dyn ErasedModule>;
    fn train_dyn(self: Box<Self>) -> Box<dyn ErasedModule>;
    fn valid_dyn(&self) -> Box<dyn ErasedModule>;
    fn materialize_dyn(self: Box<Self>) -> Box<dyn ErasedModule>;
    fn content_dyn(&self, content: Content) -> Option<Content>;
    fn clone_dyn(&self) -> Box<dyn ErasedModule>;
    fn as_any(&self) -> &dyn Any;
    fn type_name(&self) -> &'static str;
}

impl<M: Module + ModuleDisplay + Sync + 'static> ErasedModule for M {
    fn visit_dyn(&self, visitor: &mut dyn DynVisitor) {
        self.visit(&mut ErasingVisitor(visitor));
    }
    fn map_dyn(self: Box<Self>, mapper: &mut dyn DynMapper) -> Box<dyn ErasedModule> {
        Box::new((*self).map(&mut ErasingMapper(mapper)))
    }
    fn collect_devices_dyn(&self, devices: Devices) -> Devices {
        self.collect_devices(devices)
    }
    fn fork_dyn(self: Box<Self>, device: &Device) -> Box<dyn ErasedModule> {
        Box::new((*self).fork(device))
    }
    fn to_device_dyn(self: Box<Self>, device: &Device) -> Box<dyn ErasedModule> {
        Box::new((*self).to_device(device))
    }
    fn train_dyn(self: Box<Self>) -> Box<dyn ErasedModule> {
        Box::new(Module::train(*self))
    }
    fn valid_dyn(&self) -> Box<dyn ErasedModule> {
        Box::new(self.valid())
    }
    fn materialize_dyn(self: Box<Self>) -> Box<dyn ErasedModule> {
        Box::new((*self).materialize())
    }
    fn content_dyn(&self, content: Content) -> Option<Content> {
        ModuleDisplayDefault::content(self, content)
    }
    fn clone_dyn(&self) -> Box<dyn ErasedModule> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn type_name(&self) -> &'static str {
        std::any::type_name::<M>()
    }
}

/// A module of a type known only at run time, with the functions `Ops` that use it.
///
/// Its parameters appear under the concrete module's own field names (no name of the wrapper
/// is added), so a plugin part's state-dict keys are those of its `#[derive(Module)]` struct.
pub struct DynModule<Ops> {
    inner: Box<dyn ErasedModule>,
    ops: Ops,
}

impl<Ops: Clone + Debug + Send + Sync + 'static> DynModule<Ops> {
    /// Erases `module`. Fails, naming the parameter, when a parameter has a rank above
    /// [`MAX_RANK`] (no layer of this workspace comes close).
    pub fn new<M>(module: M, ops: Ops) -> Result<Self, UnsupportedRank>
    where
        M: Module + ModuleDisplay + Sync + 'static,
    {
        check_ranks(&module)?;
        Ok(Self {
            inner: Box::new(module),
            ops,
        })
    }

    /// The functions registered with the module.
    pub fn ops(&self) -> &Ops {
        &self.ops
    }

    /// The module at its concrete type; `None` for a module of another type.
    pub fn get<M: 'static>(&self) -> Option<&M> {
        self.inner.as_any().downcast_ref::<M>()
    }

    /// The concrete module's Rust type name (errors, listings).
    pub fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }

    fn rewrap(&self, inner: Box<dyn ErasedModule>) -> Self {
        Self {
            inner,
            ops: self.ops.clone(),
        }
    }
}

/// Fails when `module` holds a parameter of a rank the erased traversal cannot carry.
fn check_ranks<M: Module>(module: &M) -> Result<(), UnsupportedRank> {
    struct Ranks {
        path: Vec<String>,
        bad: Option<(String, usize)>,
    }
    impl Ranks {
        fn see(&mut self, rank: usize) {
            if rank > MAX_RANK && self.bad.is_none() {
                self.bad = Some((self.path.join("."), rank));
            }
        }
    }
    impl ModuleVisitor for Ranks {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<D>>) {
            self.see(D);
        }
        fn visit_int<const D: usize>(&mut self, _: &Param<Tensor<D, Int>>) {
            self.see(D);
        }
        fn visit_bool<const D: usize>(&mut self, _: &Param<Tensor<D, Bool>>) {
            self.see(D);
        }
    }
    let mut ranks = Ranks {
        path: Vec::new(),
        bad: None,
    };
    module.visit(&mut ranks);
    match ranks.bad {
        None => Ok(()),
        Some((key, rank)) => Err(UnsupportedRank {
            module: std::any::type_name::<M>(),
            key,
            rank,
        }),
    }
}

impl<Ops: Clone> Clone for DynModule<Ops> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone_dyn(),
            ops: self.ops.clone(),
        }
    }
}

impl<Ops: Debug> Debug for DynModule<Ops> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<Ops: Clone + Debug + Send + Sync + 'static> Module for DynModule<Ops> {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.inner.collect_devices_dyn(devices)
    }

    fn fork(self, device: &Device) -> Self {
        Self {
            inner: self.inner.fork_dyn(device),
            ops: self.ops,
        }
    }

    fn to_device(self, device: &Device) -> Self {
        Self {
            inner: self.inner.to_device_dyn(device),
            ops: self.ops,
        }
    }

    fn train(self) -> Self {
        Self {
            inner: self.inner.train_dyn(),
            ops: self.ops,
        }
    }

    fn valid(&self) -> Self {
        self.rewrap(self.inner.valid_dyn())
    }

    fn materialize(self) -> Self {
        Self {
            inner: self.inner.materialize_dyn(),
            ops: self.ops,
        }
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.inner.visit_dyn(&mut TypedVisitor(visitor));
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        Self {
            inner: self.inner.map_dyn(&mut TypedMapper(mapper)),
            ops: self.ops,
        }
    }
}

impl<Ops: Clone + Debug + Send + Sync + 'static> ModuleDisplayDefault for DynModule<Ops> {
    fn content(&self, content: Content) -> Option<Content> {
        self.inner.content_dyn(content)
    }

    fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}

impl<Ops: Clone + Debug + Send + Sync + 'static> ModuleDisplay for DynModule<Ops> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{LayerNorm, Linear, init};
    use crate::params::{load_params, param_data, param_grads, param_infos, set_trainable};
    use std::collections::HashMap;

    #[derive(Module, Debug)]
    struct Inner {
        norm: LayerNorm,
        proj: Linear,
        scale: Param<Tensor<1>>,
    }

    #[derive(Clone, Debug)]
    struct Ops {
        forward: fn(&DynModule<Ops>, Tensor<2>) -> Tensor<2>,
    }

    fn forward(m: &DynModule<Ops>, x: Tensor<2>) -> Tensor<2> {
        let inner = m.get::<Inner>().expect("built from Inner");
        inner.proj.forward(inner.norm.forward(x)) * inner.scale.val().unsqueeze()
    }

    #[derive(Module, Debug)]
    struct Outer {
        head: DynModule<Ops>,
        tail: Linear,
    }

    fn outer(device: &Device) -> Outer {
        let inner = Inner {
            norm: LayerNorm::new(4, device),
            proj: Linear::trunc_normal(4, 3, true, device),
            scale: init::constant([3], 2.0, device),
        };
        Outer {
            head: DynModule::new(inner, Ops { forward }).expect("ranks 1 and 2"),
            tail: Linear::trunc_normal(3, 2, false, device),
        }
    }

    #[test]
    fn keys_are_the_concrete_modules_own() {
        let keys: Vec<String> = param_infos(&outer(&Device::flex()))
            .into_iter()
            .map(|p| p.key)
            .collect();
        assert_eq!(
            keys,
            [
                "head.norm.weight",
                "head.norm.bias",
                "head.proj.weight",
                "head.proj.bias",
                "head.scale",
                "tail.weight"
            ]
        );
    }

    #[test]
    fn state_round_trips_and_gradients_flow() {
        let device = Device::flex().autodiff();
        let a = outer(&device);
        let b = outer(&device);
        let saved: HashMap<String, _> = param_data(&a, &|_| true).into_iter().collect();
        let (b, outcome) = load_params(b, &saved);
        assert!(outcome.missing.is_empty() && outcome.mismatched.is_empty());
        let x = Tensor::<2>::ones([2, 4], &device);
        let run = |m: &Outer| m.tail.forward((m.head.ops().forward)(&m.head, x.clone()));
        let diff: f32 = (run(&a) - run(&b)).abs().max().into_scalar();
        assert_eq!(diff, 0.0);

        let b = set_trainable(b, &|k: &str| k.starts_with("head."));
        let grads = param_grads(&b, &run(&b).sum().backward());
        let mut keys: Vec<&str> = grads.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "head.norm.bias",
                "head.norm.weight",
                "head.proj.bias",
                "head.proj.weight",
                "head.scale"
            ]
        );
    }

    #[test]
    fn clones_fork_and_count() {
        let device = Device::flex();
        let m = outer(&device);
        assert_eq!(Module::num_params(&m), 8 + 15 + 3 + 6);
        let forked = m.clone().fork(&device).valid();
        assert_eq!(forked.head.type_name(), std::any::type_name::<Inner>());
        assert!(forked.head.get::<Linear>().is_none());
        assert!(format!("{forked}").contains("Inner"), "{forked}");
    }
}
