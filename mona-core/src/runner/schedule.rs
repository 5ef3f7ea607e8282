//! mmcv 1.x learning-rate schedules (`lr_config`), with their warmups.
//!
//! `policy` is resolved like mmcv: a lowercase name is title-cased (`step` → `Step`,
//! `poly` → `Poly`) and looked up in the schedule registry. The regular lr of a parameter
//! with base lr `b` depends on progress = epoch (`by_epoch = true`, 0-based, constant within
//! an epoch) or iteration; warmup always counts iterations (`warmup_by_epoch` converts epochs
//! to iterations with the epoch length).

use serde::Deserialize;

use crate::config::ConfigNode;
use crate::registry::BuildError;

/// `step` as an int (every N) or a list of milestones.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Steps {
    Every(usize),
    Milestones(Vec<usize>),
}

/// `lr_config` of an mmcv config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrConfig {
    pub policy: String,
    #[serde(default = "yes")]
    pub by_epoch: bool,
    #[serde(default)]
    pub warmup: Option<String>,
    #[serde(default)]
    pub warmup_iters: usize,
    #[serde(default = "d_warmup_ratio")]
    pub warmup_ratio: f64,
    #[serde(default)]
    pub warmup_by_epoch: bool,
    #[serde(default)]
    pub step: Option<Steps>,
    #[serde(default = "d_gamma")]
    pub gamma: f64,
    #[serde(default)]
    pub min_lr: Option<f64>,
    #[serde(default)]
    pub min_lr_ratio: Option<f64>,
    #[serde(default = "d_power")]
    pub power: f64,
}

fn yes() -> bool {
    true
}
fn d_warmup_ratio() -> f64 {
    0.1
}
fn d_gamma() -> f64 {
    0.1
}
fn d_power() -> f64 {
    1.0
}

/// The regular (post-warmup) rule.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    Fixed,
    Step {
        steps: Steps,
        gamma: f64,
        min_lr: Option<f64>,
    },
    CosineAnnealing {
        min_lr: Option<f64>,
        min_lr_ratio: Option<f64>,
    },
    Poly {
        power: f64,
        min_lr: f64,
    },
    Exp {
        gamma: f64,
    },
}

/// The warmup rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Warmup {
    Linear,
    Constant,
    Exp,
}

/// A resolved schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    pub policy: Policy,
    pub by_epoch: bool,
    pub warmup: Option<(Warmup, f64)>,
    warmup_iters: usize,
    warmup_by_epoch: bool,
}

/// Where training is, for the schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// 0-based epoch (for iteration-based runs: `iter / epoch_len`).
    pub epoch: usize,
    /// 0-based global iteration.
    pub iter: usize,
    pub epoch_len: usize,
    pub max_epochs: usize,
    pub max_iters: usize,
}

crate::declare_registry! {
    /// LR schedule policies, selected by `lr_config.policy`.
    pub struct ScheduleEntry: "lr schedule" =>
        fn(&LrConfig, &ConfigNode<'_>) -> Result<Policy, BuildError>;
}

fn fixed(_: &LrConfig, _: &ConfigNode<'_>) -> Result<Policy, BuildError> {
    Ok(Policy::Fixed)
}
fn step(c: &LrConfig, node: &ConfigNode<'_>) -> Result<Policy, BuildError> {
    let steps = c
        .step
        .clone()
        .ok_or_else(|| BuildError::invalid(node, Some("step"), "the step policy needs `step`"))?;
    Ok(Policy::Step {
        steps,
        gamma: c.gamma,
        min_lr: c.min_lr,
    })
}
fn cosine(c: &LrConfig, node: &ConfigNode<'_>) -> Result<Policy, BuildError> {
    if c.min_lr.is_some() == c.min_lr_ratio.is_some() {
        return Err(BuildError::invalid(
            node,
            None,
            "CosineAnnealing needs exactly one of `min_lr` and `min_lr_ratio`",
        ));
    }
    Ok(Policy::CosineAnnealing {
        min_lr: c.min_lr,
        min_lr_ratio: c.min_lr_ratio,
    })
}
fn poly(c: &LrConfig, _: &ConfigNode<'_>) -> Result<Policy, BuildError> {
    Ok(Policy::Poly {
        power: c.power,
        min_lr: c.min_lr.unwrap_or(0.0),
    })
}
fn exp(c: &LrConfig, _: &ConfigNode<'_>) -> Result<Policy, BuildError> {
    Ok(Policy::Exp { gamma: c.gamma })
}

inventory::submit! { ScheduleEntry::new("Fixed", fixed) }
inventory::submit! { ScheduleEntry::new("Step", step) }
inventory::submit! { ScheduleEntry::new("CosineAnnealing", cosine) }
inventory::submit! { ScheduleEntry::new("Poly", poly) }
inventory::submit! { ScheduleEntry::new("Exp", exp) }

/// mmcv's cosine annealing from `start` to `end` at `factor` ∈ [0, 1].
pub fn annealing_cos(start: f64, end: f64, factor: f64) -> f64 {
    let cos_out = (std::f64::consts::PI * factor).cos() + 1.0;
    end + 0.5 * (start - end) * cos_out
}

impl LrSchedule {
    /// Builds the schedule of an `lr_config` node.
    pub fn from_config(node: &ConfigNode<'_>) -> Result<Self, BuildError> {
        let c: LrConfig = node.extract()?;
        let mut name = c.policy.clone();
        if name == name.to_lowercase() {
            let mut chars = name.chars();
            name = chars
                .next()
                .map(|f| f.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default();
        }
        let file = node.file().display().to_string();
        let entry = crate::registry::lookup_name::<ScheduleEntry>(
            &name,
            &file,
            &format!("{}.policy", node.key()),
        )?;
        let policy = (entry.build)(&c, node)?;
        let warmup = match c.warmup.as_deref() {
            None => None,
            Some("linear") => Some((Warmup::Linear, c.warmup_ratio)),
            Some("constant") => Some((Warmup::Constant, c.warmup_ratio)),
            Some("exp") => Some((Warmup::Exp, c.warmup_ratio)),
            Some(other) => {
                return Err(BuildError::invalid(
                    node,
                    Some("warmup"),
                    format!("unknown warmup \"{other}\" (expected linear, constant or exp)"),
                ));
            }
        };
        if warmup.is_some() && !(c.warmup_ratio > 0.0 && c.warmup_ratio <= 1.0) {
            return Err(BuildError::invalid(
                node,
                Some("warmup_ratio"),
                "must be in (0, 1]",
            ));
        }
        Ok(Self {
            policy,
            by_epoch: c.by_epoch,
            warmup,
            warmup_iters: c.warmup_iters,
            warmup_by_epoch: c.warmup_by_epoch,
        })
    }

    /// A constant schedule (no `lr_config`).
    pub fn constant() -> Self {
        Self {
            policy: Policy::Fixed,
            by_epoch: true,
            warmup: None,
            warmup_iters: 0,
            warmup_by_epoch: false,
        }
    }

    /// Warmup length in iterations for an epoch of `epoch_len` iterations.
    pub fn warmup_iters(&self, epoch_len: usize) -> usize {
        if self.warmup_by_epoch {
            self.warmup_iters * epoch_len
        } else {
            self.warmup_iters
        }
    }

    /// The regular lr of base lr `base` at `p`.
    pub fn regular_lr(&self, base: f64, p: &Progress) -> f64 {
        let (progress, max_progress) = if self.by_epoch {
            (p.epoch, p.max_epochs)
        } else {
            (p.iter, p.max_iters)
        };
        match &self.policy {
            Policy::Fixed => base,
            Policy::Step {
                steps,
                gamma,
                min_lr,
            } => {
                let exp = match steps {
                    Steps::Every(s) => progress / (*s).max(1),
                    Steps::Milestones(ms) => {
                        ms.iter().position(|s| progress < *s).unwrap_or(ms.len())
                    }
                };
                let lr = base * gamma.powi(exp as i32);
                min_lr.map_or(lr, |m| lr.max(m))
            }
            Policy::CosineAnnealing {
                min_lr,
                min_lr_ratio,
            } => {
                let target = match min_lr_ratio {
                    Some(r) => base * r,
                    None => min_lr.unwrap_or(0.0),
                };
                annealing_cos(base, target, progress as f64 / max_progress.max(1) as f64)
            }
            Policy::Poly { power, min_lr } => {
                let coeff = (1.0 - progress as f64 / max_progress.max(1) as f64).powf(*power);
                (base - min_lr) * coeff + min_lr
            }
            Policy::Exp { gamma } => base * gamma.powi(progress as i32),
        }
    }

    /// The lr of base lr `base` at `p`, warmup included.
    pub fn lr(&self, base: f64, p: &Progress) -> f64 {
        let regular = self.regular_lr(base, p);
        let warmup_iters = self.warmup_iters(p.epoch_len);
        match self.warmup {
            Some((kind, ratio)) if p.iter < warmup_iters => {
                let t = p.iter as f64 / warmup_iters as f64;
                match kind {
                    Warmup::Linear => regular * (1.0 - (1.0 - t) * (1.0 - ratio)),
                    Warmup::Constant => regular * ratio,
                    Warmup::Exp => regular * ratio.powf(1.0 - t),
                }
            }
            _ => regular,
        }
    }
}
