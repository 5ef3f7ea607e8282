//! Named parameter walks over any module, with the official state-dict keys as names.
//!
//! burn reports module paths through `enter_module`/`exit_module`; our layers are named like
//! PyTorch's, so the path *is* the official key, except for enum variant segments (the
//! `AdapterModule::Mona` in `my_module_1.Mona.gamma`), which these walks drop.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// The dotted path of the current parameter, without enum variant segments.
#[derive(Default)]
struct PathStack {
    parts: Vec<Option<String>>,
    /// The container type of each entered level (`Struct:LayerNorm`, `Vec`, `Enum:...`).
    containers: Vec<String>,
}

impl PathStack {
    fn enter(&mut self, name: &str, container: &str) {
        self.parts
            .push((!container.starts_with("Enum:")).then(|| name.to_string()));
        self.containers.push(container.to_string());
    }
    fn exit(&mut self) {
        self.parts.pop();
        self.containers.pop();
    }
    /// The struct owning the current parameter (`LayerNorm`, `Conv2d`, ...).
    fn owner(&self) -> String {
        let last = self.containers.last().map(String::as_str).unwrap_or("");
        last.strip_prefix("Struct:").unwrap_or(last).to_string()
    }
    fn key(&self) -> String {
        let mut key = String::new();
        for part in self.parts.iter().flatten() {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(part);
        }
        key
    }
}

/// One parameter's key, shape and owning module type.
///
/// Whether a parameter trains is not read from the parameter: burn keeps that flag private on
/// devices without autodiff. Models answer it from their method's rule on the key instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub key: String,
    pub shape: Vec<usize>,
    /// The Rust type of the module holding it (`LayerNorm`, `Conv2d`, `Linear`, `Mona`, ...):
    /// the optimizer's parameter-wise rules depend on it as mmcv's depend on the module class.
    pub module_type: String,
}

impl ParamInfo {
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

struct InfoVisitor {
    path: PathStack,
    out: Vec<ParamInfo>,
}

impl ModuleVisitor for InfoVisitor {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out.push(ParamInfo {
            key: self.path.key(),
            shape: param.lazy_shape().dims::<D>().to_vec(),
            module_type: self.path.owner(),
        });
    }
}

/// Every float parameter of `module`, in declaration order.
pub fn param_infos<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut v = InfoVisitor {
        path: PathStack::default(),
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

struct DataVisitor<'a> {
    path: PathStack,
    filter: &'a dyn Fn(&str) -> bool,
    out: Vec<(String, TensorData)>,
}

impl ModuleVisitor for DataVisitor<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let key = self.path.key();
        if (self.filter)(&key) {
            self.out.push((key, param.val().to_data()));
        }
    }
}

/// The values of the parameters whose key passes `filter`.
pub fn param_data<M: Module>(
    module: &M,
    filter: &dyn Fn(&str) -> bool,
) -> Vec<(String, TensorData)> {
    let mut v = DataVisitor {
        path: PathStack::default(),
        filter,
        out: Vec::new(),
    };
    module.visit(&mut v);
    v.out
}

struct GradVisitor<'a> {
    path: PathStack,
    grads: &'a burn::tensor::Gradients,
    out: BTreeMap<String, TensorData>,
}

impl ModuleVisitor for GradVisitor<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = param.val().grad(self.grads) {
            self.out.insert(self.path.key(), g.to_data());
        }
    }
}

/// The gradient of every parameter that has one after `backward`, by key.
pub fn param_grads<M: Module>(
    module: &M,
    grads: &burn::tensor::Gradients,
) -> BTreeMap<String, TensorData> {
    let mut v = GradVisitor {
        path: PathStack::default(),
        grads,
        out: BTreeMap::new(),
    };
    module.visit(&mut v);
    v.out
}

struct RequireGradMapper<'a> {
    path: PathStack,
    rule: &'a dyn Fn(&str) -> bool,
}

impl ModuleMapper for RequireGradMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = self.path.key();
        param.set_require_grad((self.rule)(&key))
    }
}

/// Sets `require_grad = rule(key)` on every float parameter (the official freezing loop).
pub fn set_trainable<M: Module>(module: M, rule: &dyn Fn(&str) -> bool) -> M {
    module.map(&mut RequireGradMapper {
        path: PathStack::default(),
        rule,
    })
}

/// A tensor whose shape does not fit the parameter it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub key: String,
    pub expected: Vec<usize>,
    pub found: Vec<usize>,
}

/// What [`load_params`] did.
#[derive(Debug, Default, Clone)]
pub struct LoadOutcome {
    /// Keys written into the module.
    pub applied: Vec<String>,
    /// Module parameters the source did not have.
    pub missing: Vec<String>,
    /// Keys whose shapes did not match (nothing written for them).
    pub mismatched: Vec<ShapeMismatch>,
}

struct LoadMapper<'a> {
    path: PathStack,
    tensors: &'a HashMap<String, TensorData>,
    outcome: LoadOutcome,
}

impl ModuleMapper for LoadMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = self.path.key();
        let Some(data) = self.tensors.get(&key) else {
            self.outcome.missing.push(key);
            return param;
        };
        let expected = param.lazy_shape().dims::<D>().to_vec();
        if data.shape().to_vec() != expected {
            self.outcome.mismatched.push(ShapeMismatch {
                key,
                expected,
                found: data.shape().to_vec(),
            });
            return param;
        }
        let data = data.clone().convert::<f32>();
        self.outcome.applied.push(key);
        // Keeps id, device and trainability, and never runs a lazy parameter's initialiser.
        let id = param.id;
        let tensor = Tensor::<D>::from_data(data, &param.lazy_device());
        param.transform_for_load(tensor, id)
    }
}

/// Writes `tensors` (by official key) into `module`, keeping each parameter's id and
/// trainability. Keys of `tensors` that name no parameter are the caller's "unused" set.
pub fn load_params<M: Module>(
    module: M,
    tensors: &HashMap<String, TensorData>,
) -> (M, LoadOutcome) {
    let mut mapper = LoadMapper {
        path: PathStack::default(),
        tensors,
        outcome: LoadOutcome::default(),
    };
    let module = module.map(&mut mapper);
    (module, mapper.outcome)
}

/// Counts of a module's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamCount {
    pub total: usize,
    pub trainable: usize,
}

/// Total parameters, and those whose key passes `trainable`.
pub fn count<M: Module>(module: &M, trainable: &dyn Fn(&str) -> bool) -> ParamCount {
    param_infos(module)
        .iter()
        .fold(ParamCount::default(), |acc, p| ParamCount {
            total: acc.total + p.numel(),
            trainable: acc.trainable + if trainable(&p.key) { p.numel() } else { 0 },
        })
}
