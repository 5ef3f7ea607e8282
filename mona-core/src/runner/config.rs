//! The runner-related parts of an mmcv config.

use serde::Deserialize;

use crate::config::Config;
use crate::registry::BuildError;

/// Epoch- or iteration-based loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerKind {
    Epochs(usize),
    Iters(usize),
}

#[derive(Debug, Clone, Deserialize)]
struct RunnerNode {
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    max_epochs: Option<usize>,
    #[serde(default)]
    max_iters: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct IntervalNode {
    #[serde(default)]
    interval: Option<usize>,
    #[serde(default)]
    by_epoch: Option<bool>,
    #[serde(default)]
    max_keep_ckpts: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct GradClip {
    max_norm: f64,
    #[serde(default)]
    norm_type: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct OptimizerConfigNode {
    #[serde(default)]
    grad_clip: Option<GradClip>,
}

/// Loop length, intervals and clipping, read from `runner`, `evaluation`,
/// `checkpoint_config`, `log_config` and `optimizer_config`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunnerCfg {
    pub kind: RunnerKind,
    /// Evaluate every N epochs (epoch runner) or iterations (iter runner); 0 = never.
    pub eval_interval: usize,
    /// Checkpoint every N epochs/iterations; the last one is always written (mmcv save_last).
    pub checkpoint_interval: usize,
    /// Keep only the newest N interval checkpoints (mmcv `max_keep_ckpts`; -1 keeps all).
    pub max_keep_ckpts: i64,
    /// Log every N iterations.
    pub log_interval: usize,
    /// Global gradient clipping (`optimizer_config.grad_clip.max_norm`).
    pub grad_clip: Option<f64>,
}

impl RunnerCfg {
    pub fn from_config(cfg: &Config) -> Result<Self, BuildError> {
        let runner_node = cfg.node("runner")?;
        let runner: RunnerNode = runner_node.extract()?;
        let kind = match (
            runner.type_name.as_str(),
            runner.max_epochs,
            runner.max_iters,
        ) {
            ("EpochBasedRunner" | "EpochBasedRunnerAmp", Some(e), _) => RunnerKind::Epochs(e),
            ("IterBasedRunner", _, Some(i)) => RunnerKind::Iters(i),
            (t @ ("EpochBasedRunner" | "EpochBasedRunnerAmp"), None, _) => {
                return Err(BuildError::invalid(
                    &runner_node,
                    Some("max_epochs"),
                    format!("{t} needs max_epochs"),
                ));
            }
            ("IterBasedRunner", _, None) => {
                return Err(BuildError::invalid(
                    &runner_node,
                    Some("max_iters"),
                    "IterBasedRunner needs max_iters",
                ));
            }
            (other, _, _) => {
                return Err(BuildError::invalid(
                    &runner_node,
                    Some("type"),
                    format!(
                        "unknown runner \"{other}\" (expected EpochBasedRunner, EpochBasedRunnerAmp or IterBasedRunner)"
                    ),
                ));
            }
        };
        let opt = |key: &str| -> Result<IntervalNode, BuildError> {
            Ok(match cfg.get(key) {
                Some(n) => n.extract()?,
                None => IntervalNode::default(),
            })
        };
        let evaluation = opt("evaluation")?;
        let checkpoint = opt("checkpoint_config")?;
        let log = opt("log_config")?;
        let grad_clip = match cfg.get("optimizer_config") {
            Some(n) => {
                let o: OptimizerConfigNode = n.extract()?;
                if let Some(g) = &o.grad_clip
                    && g.norm_type.is_some_and(|t| t != 2.0)
                {
                    return Err(BuildError::invalid(
                        &n,
                        Some("grad_clip.norm_type"),
                        "only the L2 norm (norm_type = 2) is supported",
                    ));
                }
                o.grad_clip.map(|g| g.max_norm)
            }
            None => None,
        };
        let _ = evaluation.by_epoch;
        Ok(Self {
            kind,
            eval_interval: evaluation.interval.unwrap_or(1),
            checkpoint_interval: checkpoint.interval.unwrap_or(1),
            max_keep_ckpts: checkpoint.max_keep_ckpts.unwrap_or(-1),
            log_interval: log.interval.unwrap_or(50).max(1),
            grad_clip,
        })
    }
}
