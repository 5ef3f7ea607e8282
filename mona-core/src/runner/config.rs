//! The runner-related parts of an mmcv config.

use serde::Deserialize;

use super::save_best::{Rule, SaveBestCfg};
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
    #[serde(default)]
    save_best: Option<String>,
    #[serde(default)]
    rule: Option<String>,
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
    /// mmcv's `GradientCumulativeOptimizerHook`.
    #[serde(default)]
    cumulative_iters: Option<i64>,
    /// The Swin detection fork's `DistOptimizerHook` (apex): the same accumulation.
    #[serde(default)]
    update_interval: Option<i64>,
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
    /// Slices a training batch is cut into, to run at the same time (`runner.batch_shards`,
    /// our addition; default [`DEFAULT_BATCH_SHARDS`], 1 = never), where the model allows it
    /// (classification without BatchNorm). The result is the same up to summation order.
    pub batch_shards: usize,
    /// Iterations whose gradients add up before one optimizer step (mmcv's
    /// `GradientCumulativeOptimizerHook`: `optimizer_config.cumulative_iters`, or the Swin
    /// fork's `update_interval`); 1 steps every iteration.
    pub cumulative_iters: usize,
    /// `evaluation.save_best` (and `evaluation.rule`): keep the best checkpoint.
    pub save_best: Option<SaveBestCfg>,
    /// `custom_hooks`, from the hook registry.
    pub custom_hooks: Vec<super::custom_hooks::HookSpec>,
}

/// Two slices: both cores of a small machine busy, while each slice keeps enough samples
/// for its own ops to split on a larger one. Fixed, not the thread count, so that a run
/// sums its gradients in the same order on every machine.
pub const DEFAULT_BATCH_SHARDS: usize = 2;

/// `runner.batch_shards`: the slices a batch is cut into to run at the same time, in
/// training (where the model allows it) and in inference; default
/// [`DEFAULT_BATCH_SHARDS`].
pub fn batch_shards(cfg: &Config) -> Result<usize, BuildError> {
    let Some(node) = cfg.get("runner.batch_shards") else {
        return Ok(DEFAULT_BATCH_SHARDS);
    };
    let n: usize = node.extract()?;
    if n == 0 {
        return Err(BuildError::invalid(
            &node,
            None,
            "batch_shards must be at least 1 (1 runs every batch whole)",
        ));
    }
    Ok(n)
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
        let (grad_clip, cumulative_iters) = match cfg.get("optimizer_config") {
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
                let mut cumulative = 1;
                for (key, value) in [
                    ("cumulative_iters", o.cumulative_iters),
                    ("update_interval", o.update_interval),
                ] {
                    let Some(v) = value else { continue };
                    if v < 1 {
                        return Err(BuildError::invalid(
                            &n,
                            Some(key),
                            format!("{key} must be at least 1 (1 steps every iteration), not {v}"),
                        ));
                    }
                    if cumulative > 1 && v as usize != cumulative {
                        return Err(BuildError::invalid(
                            &n,
                            Some(key),
                            format!(
                                "cumulative_iters and update_interval disagree ({cumulative} and {v}); set one"
                            ),
                        ));
                    }
                    cumulative = v as usize;
                }
                (o.grad_clip.map(|g| g.max_norm), cumulative)
            }
            None => (None, 1),
        };
        let batch_shards = batch_shards(cfg)?;
        let save_best = match (&evaluation.save_best, cfg.get("evaluation")) {
            (Some(metric), Some(node)) => {
                let rule = evaluation
                    .rule
                    .as_deref()
                    .map(|r| {
                        Rule::parse(r).ok_or_else(|| {
                            BuildError::invalid(
                                &node,
                                Some("rule"),
                                format!("rule must be \"greater\" or \"less\", not \"{r}\""),
                            )
                        })
                    })
                    .transpose()?;
                if rule.is_none() && metric != "auto" && Rule::infer(metric).is_none() {
                    return Err(BuildError::invalid(
                        &node,
                        Some("save_best"),
                        format!(
                            "cannot infer whether a greater or a lesser \"{metric}\" is better; set evaluation.rule"
                        ),
                    ));
                }
                Some(SaveBestCfg {
                    metric: metric.clone(),
                    rule,
                })
            }
            _ => None,
        };
        let _ = evaluation.by_epoch;
        Ok(Self {
            kind,
            eval_interval: evaluation.interval.unwrap_or(1),
            checkpoint_interval: checkpoint.interval.unwrap_or(1),
            max_keep_ckpts: checkpoint.max_keep_ckpts.unwrap_or(-1),
            log_interval: log.interval.unwrap_or(50).max(1),
            grad_clip,
            batch_shards,
            cumulative_iters,
            save_best,
            custom_hooks: super::custom_hooks::hook_specs(cfg)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &str) -> Config {
        let text = format!("[runner]\ntype = \"EpochBasedRunner\"\nmax_epochs = 1\n{extra}");
        Config::from_str_at(&text, "shards.toml").unwrap()
    }

    #[test]
    fn batch_shards_defaults_to_two_and_refuses_zero() {
        let parsed = |extra| RunnerCfg::from_config(&cfg(extra)).map(|r| r.batch_shards);
        assert_eq!(parsed("").unwrap(), DEFAULT_BATCH_SHARDS);
        assert_eq!(parsed("batch_shards = 3").unwrap(), 3);
        let err = parsed("batch_shards = 0").unwrap_err().to_string();
        assert!(err.contains("shards.toml"), "{err}");
        assert!(err.contains("runner.batch_shards"), "{err}");
        assert!(err.contains("must be at least 1"), "{err}");
    }

    #[test]
    fn cumulative_iters_come_from_either_hook_and_refuse_nonsense() {
        let parsed = |extra| RunnerCfg::from_config(&cfg(extra)).map(|r| r.cumulative_iters);
        assert_eq!(parsed("").unwrap(), 1);
        assert_eq!(
            parsed("[optimizer_config]\ntype = \"GradientCumulativeOptimizerHook\"\ncumulative_iters = 4").unwrap(),
            4
        );
        assert_eq!(
            parsed("[optimizer_config]\nupdate_interval = 2").unwrap(),
            2
        );
        let err = parsed("[optimizer_config]\ncumulative_iters = 0")
            .unwrap_err()
            .to_string();
        assert!(err.contains("shards.toml"), "{err}");
        assert!(err.contains("optimizer_config.cumulative_iters"), "{err}");
        assert!(err.contains("must be at least 1"), "{err}");
        let err = parsed("[optimizer_config]\ncumulative_iters = 2\nupdate_interval = 3")
            .unwrap_err()
            .to_string();
        assert!(err.contains("disagree (2 and 3)"), "{err}");
    }
}
