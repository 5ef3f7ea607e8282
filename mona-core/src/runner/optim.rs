//! Optimizers with PyTorch's exact update rules and mmcv's parameter-wise settings.
//!
//! burn's optimizers differ from PyTorch in defaults (AdamW eps 1e-5, decay 1e-4, momentum
//! dampening 0.1) and clip gradients per tensor; these follow `torch.optim.AdamW` / `SGD`
//! and `clip_grad_norm_` to the letter, keep their state by official parameter key (so it is
//! saved and resumed by name), and apply per-parameter lr/decay multipliers.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use serde::Deserialize;

use super::paramwise::{ParamMults, ParamwiseCfg};
use crate::config::ConfigNode;
use crate::fused::{self, AdamStep, adam_update};
use crate::params::{ParamInfo, param_infos};
use crate::registry::BuildError;

/// `optimizer` of an mmcv config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerCfg {
    #[serde(rename = "type")]
    pub type_name: String,
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: Option<f64>,
    #[serde(default)]
    pub betas: Option<[f64; 2]>,
    #[serde(default)]
    pub eps: Option<f64>,
    #[serde(default)]
    pub momentum: Option<f64>,
    #[serde(default)]
    pub dampening: Option<f64>,
    #[serde(default)]
    pub nesterov: bool,
    #[serde(default)]
    pub amsgrad: bool,
    #[serde(default)]
    pub paramwise_cfg: ParamwiseCfg,
}

impl OptimizerCfg {
    /// PyTorch's own checks of its optimizers' arguments, before any step: a negative
    /// learning rate would run gradient ascent and a beta of 1 or more would never forget,
    /// both without an error.
    pub fn validate(&self, node: &ConfigNode<'_>) -> Result<(), BuildError> {
        let bad = |key: &str, message: String| Err(BuildError::invalid(node, Some(key), message));
        let non_negative = [
            ("lr", Some(self.lr)),
            ("weight_decay", self.weight_decay),
            ("eps", self.eps),
            ("momentum", self.momentum),
            ("dampening", self.dampening),
        ];
        for (key, value) in non_negative {
            if let Some(v) = value
                && !(v.is_finite() && v >= 0.0)
            {
                return bad(
                    key,
                    format!("{v} is invalid: it must be a finite number ≥ 0"),
                );
            }
        }
        if let Some(betas) = self.betas {
            for (i, b) in betas.iter().enumerate() {
                if !(0.0..1.0).contains(b) {
                    return bad(
                        "betas",
                        format!("betas[{i}] = {b} is invalid: each beta must lie in [0, 1)"),
                    );
                }
            }
        }
        Ok(())
    }
}

/// The update rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    /// `torch.optim.AdamW` (decoupled decay: `p ← p·(1 − lr·wd)` first).
    AdamW { beta1: f64, beta2: f64, eps: f64 },
    /// `torch.optim.Adam` (L2 decay added to the gradient).
    Adam { beta1: f64, beta2: f64, eps: f64 },
    /// `torch.optim.SGD` (L2 decay added to the gradient, then momentum).
    Sgd {
        momentum: f64,
        dampening: f64,
        nesterov: bool,
    },
}

/// Per-parameter state, flattened to 1-D on the non-autodiff device.
#[derive(Debug, Clone)]
struct State {
    step: u64,
    /// Adam: exp_avg; SGD: momentum_buffer.
    m: Option<Tensor<1>>,
    /// Adam: exp_avg_sq.
    v: Option<Tensor<1>>,
}

/// Settings of one parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSetting {
    pub base_lr: f64,
    /// The lr of the next step: `base_lr` until the LR schedule's hook sets it (torch's
    /// `param_group['lr']`, which mmcv's `LrUpdaterHook` writes before every iteration).
    pub lr: f64,
    pub weight_decay: f64,
    pub mults: ParamMults,
}

/// An optimizer over the trainable parameters of one model.
#[derive(Debug, Clone)]
pub struct Optimizer {
    pub rule: Rule,
    pub base_lr: f64,
    /// The schedule's lr for `base_lr` at the current iteration (what the logs report).
    current_lr: f64,
    settings: BTreeMap<String, ParamSetting>,
    state: HashMap<String, State>,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Global L2 norm of the gradients before clipping (0 when not computed).
    pub grad_norm: f64,
    /// Parameters updated.
    pub updated: usize,
}

crate::declare_registry! {
    /// Optimizers, selected by `optimizer.type`.
    pub struct OptimizerEntry: "optimizer" =>
        fn(&OptimizerCfg, &ConfigNode<'_>) -> Result<Rule, BuildError>;
}

fn build_adamw(c: &OptimizerCfg, _: &ConfigNode<'_>) -> Result<Rule, BuildError> {
    let [beta1, beta2] = c.betas.unwrap_or([0.9, 0.999]);
    Ok(Rule::AdamW {
        beta1,
        beta2,
        eps: c.eps.unwrap_or(1e-8),
    })
}

fn build_adam(c: &OptimizerCfg, _: &ConfigNode<'_>) -> Result<Rule, BuildError> {
    let [beta1, beta2] = c.betas.unwrap_or([0.9, 0.999]);
    Ok(Rule::Adam {
        beta1,
        beta2,
        eps: c.eps.unwrap_or(1e-8),
    })
}

fn build_sgd(c: &OptimizerCfg, node: &ConfigNode<'_>) -> Result<Rule, BuildError> {
    let (momentum, dampening) = (c.momentum.unwrap_or(0.0), c.dampening.unwrap_or(0.0));
    if c.nesterov && (momentum <= 0.0 || dampening != 0.0) {
        return Err(BuildError::invalid(
            node,
            Some("nesterov"),
            "Nesterov momentum requires a momentum and zero dampening",
        ));
    }
    Ok(Rule::Sgd {
        momentum,
        dampening,
        nesterov: c.nesterov,
    })
}

inventory::submit! { OptimizerEntry::new("AdamW", build_adamw) }
inventory::submit! { OptimizerEntry::new("Adam", build_adam) }
inventory::submit! { OptimizerEntry::new("SGD", build_sgd) }

impl Optimizer {
    /// Builds the optimizer of `node` (the `optimizer` table) for the parameters of `model`
    /// whose key passes `trainable`.
    pub fn from_config<M: Module>(
        node: &ConfigNode<'_>,
        model: &M,
        trainable: &dyn Fn(&str) -> bool,
    ) -> Result<Self, BuildError> {
        let cfg: OptimizerCfg = node.extract()?;
        cfg.validate(node)?;
        let entry = crate::registry::lookup::<OptimizerEntry>(node)?;
        let rule = (entry.build)(&cfg, node)?;
        let default_wd = match rule {
            Rule::AdamW { .. } => 0.01,
            _ => 0.0,
        };
        let wd = cfg.weight_decay.unwrap_or(default_wd);
        Ok(Self::new(
            rule,
            cfg.lr,
            wd,
            &cfg.paramwise_cfg,
            &param_infos(model),
            trainable,
        ))
    }

    /// An optimizer with explicit settings.
    pub fn new(
        rule: Rule,
        base_lr: f64,
        base_wd: f64,
        paramwise: &ParamwiseCfg,
        infos: &[ParamInfo],
        trainable: &dyn Fn(&str) -> bool,
    ) -> Self {
        let shapes: HashMap<&str, &[usize]> = infos
            .iter()
            .map(|p| (p.key.as_str(), p.shape.as_slice()))
            .collect();
        let settings = infos
            .iter()
            .filter(|p| trainable(&p.key))
            .map(|p| {
                let owner = p.key.rsplit_once('.').map(|(m, _)| m).unwrap_or("");
                let weight_shape = shapes.get(format!("{owner}.weight").as_str()).copied();
                let mults = paramwise.mults(p, weight_shape);
                (
                    p.key.clone(),
                    ParamSetting {
                        base_lr: base_lr * mults.lr_mult,
                        lr: base_lr * mults.lr_mult,
                        weight_decay: base_wd * mults.decay_mult,
                        mults,
                    },
                )
            })
            .collect();
        Self {
            rule,
            base_lr,
            current_lr: base_lr,
            settings,
            state: HashMap::new(),
        }
    }

    /// Multiplies every learning rate by `factor` (mmdet's `auto_scale_lr`: the lr of a
    /// config written for one total batch size, used with another).
    pub fn scale_lr(&mut self, factor: f64) {
        self.base_lr *= factor;
        self.current_lr *= factor;
        for setting in self.settings.values_mut() {
            setting.base_lr *= factor;
            setting.lr *= factor;
        }
    }

    /// Sets the lr of the next steps: `lr_at(base)` maps each parameter's base lr (the
    /// optimizer lr times its `lr_mult`) to its current one. The LR schedule's hook calls it
    /// before every iteration, as mmcv's `LrUpdaterHook` sets each group's lr.
    pub fn set_lr(&mut self, lr_at: &dyn Fn(f64) -> f64) {
        self.current_lr = lr_at(self.base_lr);
        for setting in self.settings.values_mut() {
            setting.lr = lr_at(setting.base_lr);
        }
    }

    /// The current lr of the optimizer's own base lr (mmcv's `runner.current_lr()`).
    pub fn current_lr(&self) -> f64 {
        self.current_lr
    }

    /// The settings of every optimised parameter, by key.
    pub fn settings(&self) -> &BTreeMap<String, ParamSetting> {
        &self.settings
    }

    /// Applies one update at each parameter's current lr ([`Self::set_lr`]). With
    /// `max_norm`, gradients are first scaled as `torch.nn.utils.clip_grad_norm_` does
    /// (global L2 norm over all of them).
    pub fn step<M: Module>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        max_norm: Option<f64>,
    ) -> (M, StepStats) {
        let mut grad_norm = 0.0;
        let mut scale = 1.0;
        if let Some(max_norm) = max_norm {
            grad_norm = global_grad_norm(&model, &grads, &self.settings);
            let coef = max_norm / (grad_norm + 1e-6);
            if coef < 1.0 {
                scale = coef;
            }
        }
        let mut mapper = StepMapper {
            path: Vec::new(),
            grads: &mut grads,
            optim: self,
            scale,
            updated: 0,
        };
        let model = model.map(&mut mapper);
        let updated = mapper.updated;
        (model, StepStats { grad_norm, updated })
    }

    /// The state as named tensors (`exp_avg.<key>`, `exp_avg_sq.<key>`, `momentum_buffer.<key>`)
    /// and the step count of each parameter, for checkpoints.
    pub fn state_dict(&self) -> (Vec<(String, TensorData)>, BTreeMap<String, u64>) {
        let (m_name, v_name) = match self.rule {
            Rule::Sgd { .. } => ("momentum_buffer", "unused"),
            _ => ("exp_avg", "exp_avg_sq"),
        };
        let mut tensors = Vec::new();
        let mut steps = BTreeMap::new();
        let mut keys: Vec<&String> = self.state.keys().collect();
        keys.sort();
        for key in keys {
            let s = &self.state[key];
            steps.insert(key.clone(), s.step);
            if let Some(m) = &s.m {
                tensors.push((format!("{m_name}.{key}"), m.to_data()));
            }
            if let Some(v) = &s.v {
                tensors.push((format!("{v_name}.{key}"), v.to_data()));
            }
        }
        (tensors, steps)
    }

    /// Restores [`Self::state_dict`] output onto `device` (the model's inner device).
    pub fn load_state_dict(
        &mut self,
        tensors: &BTreeMap<String, TensorData>,
        steps: &BTreeMap<String, u64>,
        device: &burn::tensor::Device,
    ) {
        self.state.clear();
        let (m_name, v_name) = match self.rule {
            Rule::Sgd { .. } => ("momentum_buffer", "unused"),
            _ => ("exp_avg", "exp_avg_sq"),
        };
        let device = device.clone().without_autodiff();
        for (key, step) in steps {
            let load = |name: &str| {
                tensors
                    .get(&format!("{name}.{key}"))
                    .map(|d| Tensor::<1>::from_data(d.clone(), &device))
            };
            self.state.insert(
                key.clone(),
                State {
                    step: *step,
                    m: load(m_name),
                    v: load(v_name),
                },
            );
        }
    }
}

/// `sqrt(Σ ||g||²)` over the gradients of optimised parameters.
fn global_grad_norm<M: Module>(
    model: &M,
    grads: &GradientsParams,
    settings: &BTreeMap<String, ParamSetting>,
) -> f64 {
    struct NormVisitor<'a> {
        grads: &'a GradientsParams,
        total: Option<Tensor<1>>,
        path: Vec<Option<String>>,
        settings: &'a BTreeMap<String, ParamSetting>,
    }
    impl ModuleVisitor for NormVisitor<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path
                .push((!container_type.starts_with("Enum:")).then(|| name.to_string()));
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if !self.settings.contains_key(&join(&self.path)) {
                return;
            }
            if let Some(g) = self.grads.get::<D>(param.id) {
                let sq = g.square().sum();
                self.total = Some(match self.total.take() {
                    Some(t) => t + sq,
                    None => sq,
                });
            }
        }
    }
    let mut v = NormVisitor {
        grads,
        total: None,
        path: Vec::new(),
        settings,
    };
    model.visit(&mut v);
    v.total
        .map(|t| (t.into_scalar::<f32>() as f64).sqrt())
        .unwrap_or(0.0)
}

fn join(path: &[Option<String>]) -> String {
    path.iter().flatten().cloned().collect::<Vec<_>>().join(".")
}

struct StepMapper<'a> {
    path: Vec<Option<String>>,
    grads: &'a mut GradientsParams,
    optim: &'a mut Optimizer,
    scale: f64,
    updated: usize,
}

impl ModuleMapper for StepMapper<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path
            .push((!container_type.starts_with("Enum:")).then(|| name.to_string()));
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let key = join(&self.path);
        let Some(setting) = self.optim.settings.get(&key).cloned() else {
            return param;
        };
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return param;
        };
        let (id, tensor, mapper) = param.consume();
        let require_grad = tensor.is_require_grad();
        let p = tensor.inner();
        let shape = p.shape();
        let n = shape.num_elements();
        let p = p.reshape([n]);
        let mut g = grad.reshape([n]);
        if self.scale != 1.0 {
            g = g * self.scale;
        }
        let lr = setting.lr;
        let wd = setting.weight_decay;
        let rule = self.optim.rule.clone();
        let state = self.optim.state.entry(key).or_insert(State {
            step: 0,
            m: None,
            v: None,
        });
        state.step += 1;
        let t = state.step as i32;
        let p = match rule {
            Rule::AdamW { beta1, beta2, eps } | Rule::Adam { beta1, beta2, eps } => {
                let decoupled = matches!(rule, Rule::AdamW { .. });
                let bc1 = 1.0 - beta1.powi(t);
                let bc2 = 1.0 - beta2.powi(t);
                let (p, m, v) = if fused::enabled(&p) && fused::enabled(&g) {
                    // The f32 constants of the composed ops below (burn rounds an f64
                    // scalar to the tensor's f32).
                    let step = AdamStep {
                        decay: (decoupled && wd != 0.0).then_some((1.0 - lr * wd) as f32),
                        l2: (!decoupled && wd != 0.0).then_some(wd as f32),
                        beta1: beta1 as f32,
                        one_minus_beta1: (1.0 - beta1) as f32,
                        beta2: beta2 as f32,
                        one_minus_beta2: (1.0 - beta2) as f32,
                        sqrt_bias2: bc2.sqrt() as f32,
                        eps: eps as f32,
                        step_size: (lr / bc1) as f32,
                    };
                    adam_update(p, g, state.m.take().zip(state.v.take()), step)
                } else {
                    let p = if decoupled && wd != 0.0 {
                        p * (1.0 - lr * wd)
                    } else {
                        p
                    };
                    if !decoupled && wd != 0.0 {
                        g = g + p.clone() * wd;
                    }
                    let m = match state.m.take() {
                        Some(m) => m * beta1 + g.clone() * (1.0 - beta1),
                        None => g.clone() * (1.0 - beta1),
                    };
                    let v = match state.v.take() {
                        Some(v) => v * beta2 + g.square() * (1.0 - beta2),
                        None => g.square() * (1.0 - beta2),
                    };
                    let denom = (v.clone().sqrt() / bc2.sqrt()).add_scalar(eps);
                    let p = p - (m.clone() / denom) * (lr / bc1);
                    (p, m, v)
                };
                state.m = Some(m);
                state.v = Some(v);
                p
            }
            Rule::Sgd {
                momentum,
                dampening,
                nesterov,
            } => {
                if wd != 0.0 {
                    g = g + p.clone() * wd;
                }
                if momentum != 0.0 {
                    let buf = match state.m.take() {
                        Some(b) => b * momentum + g.clone() * (1.0 - dampening),
                        None => g.clone(),
                    };
                    g = if nesterov {
                        g + buf.clone() * momentum
                    } else {
                        buf.clone()
                    };
                    state.m = Some(buf);
                }
                p - g * lr
            }
        };
        self.updated += 1;
        let mut updated = Tensor::<D>::from_inner(p.reshape(shape));
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}
