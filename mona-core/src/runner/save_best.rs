//! mmcv's `evaluation.save_best`: after each evaluation, the checkpoint of the best score so
//! far is kept as `best_<metric>_<epoch_N|iter_N>.safetensors`, and the previous best file
//! is removed.
//!
//! `save_best = "auto"` takes the first metric the evaluation reports (by name). The `rule`
//! (`greater` or `less`) is inferred as mmcv infers it when not given: a metric named like an
//! accuracy, precision, AP, Dice or IoU is better when greater, a loss when less. The best
//! score travels in the checkpoints, so a resumed run keeps comparing against it.

use serde::{Deserialize, Serialize};

use super::Metrics;

/// Metric names (lowercased) that are better when greater, as mmcv's `EvalHook`.
const GREATER: [&str; 10] = [
    "acc",
    "top",
    "ar@",
    "auc",
    "precision",
    "map",
    "mdice",
    "miou",
    "macc",
    "aacc",
];
/// Metric names (lowercased) that are better when less.
const LESS: [&str; 1] = ["loss"];

/// Whether a greater or a lesser score is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    Greater,
    Less,
}

impl Rule {
    /// `greater` or `less`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "greater" => Some(Self::Greater),
            "less" => Some(Self::Less),
            _ => None,
        }
    }

    /// The rule mmcv infers from a metric's name, if any: an exact name first, then a part.
    pub fn infer(key: &str) -> Option<Self> {
        let key = key.to_lowercase();
        if GREATER.contains(&key.as_str()) {
            return Some(Self::Greater);
        }
        if LESS.contains(&key.as_str()) {
            return Some(Self::Less);
        }
        if GREATER.iter().any(|g| key.contains(g)) {
            return Some(Self::Greater);
        }
        if LESS.iter().any(|l| key.contains(l)) {
            return Some(Self::Less);
        }
        None
    }

    fn better(self, score: f64, best: f64) -> bool {
        match self {
            Self::Greater => score > best,
            Self::Less => score < best,
        }
    }
}

/// The best checkpoint so far (kept in the checkpoints' metadata).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub metric: String,
    pub score: f64,
    /// The file name in the work dir.
    pub file: String,
}

/// What `evaluation.save_best` asks for: a metric name (or `auto`) and a rule, if given.
#[derive(Debug, Clone, PartialEq)]
pub struct SaveBestCfg {
    pub metric: String,
    pub rule: Option<Rule>,
}

/// The tracker of one run.
#[derive(Debug, Clone)]
pub struct SaveBest {
    cfg: SaveBestCfg,
    pub best: Option<Best>,
}

/// Why an evaluation cannot be ranked for `evaluation.save_best`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SaveBestError {
    #[error("evaluation.save_best = \"auto\": the evaluation reported no metric")]
    NoMetric,
    #[error("evaluation.save_best = \"{metric}\": the evaluation reports {reported}")]
    NotReported { metric: String, reported: String },
    #[error(
        "evaluation.save_best = \"{0}\": cannot infer whether greater or less is better; set evaluation.rule"
    )]
    NoRule(String),
}

/// A best checkpoint to write, and the previous one to remove.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBest {
    pub best: Best,
    pub replaces: Option<String>,
}

impl SaveBest {
    pub fn new(cfg: SaveBestCfg, resumed: Option<Best>) -> Self {
        Self { cfg, best: resumed }
    }

    /// After an evaluation tagged `tag` (`epoch_4`, `iter_2000`): the new best, if this
    /// evaluation's score beats the best so far; an error names the metric when the
    /// evaluation does not report it or its rule cannot be inferred.
    pub fn after_eval(
        &mut self,
        metrics: &Metrics,
        tag: &str,
    ) -> Result<Option<NewBest>, SaveBestError> {
        let metric = if self.cfg.metric == "auto" {
            metrics
                .keys()
                .next()
                .cloned()
                .ok_or(SaveBestError::NoMetric)?
        } else {
            self.cfg.metric.clone()
        };
        let Some(&score) = metrics.get(&metric) else {
            return Err(SaveBestError::NotReported {
                reported: metrics.keys().cloned().collect::<Vec<_>>().join(", "),
                metric,
            });
        };
        let rule = self
            .cfg
            .rule
            .or_else(|| Rule::infer(&metric))
            .ok_or_else(|| SaveBestError::NoRule(metric.clone()))?;
        let improved = match &self.best {
            Some(best) => rule.better(score, best.score),
            None => !score.is_nan(),
        };
        if !improved {
            return Ok(None);
        }
        let best = Best {
            file: format!("best_{metric}_{tag}.safetensors"),
            metric,
            score,
        };
        let replaces = self
            .best
            .replace(best.clone())
            .map(|old| old.file)
            .filter(|old| *old != best.file);
        Ok(Some(NewBest { best, replaces }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, f64)]) -> Metrics {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn rules_are_inferred_as_mmcv_infers_them() {
        assert_eq!(Rule::infer("accuracy_top-1"), Some(Rule::Greater));
        assert_eq!(Rule::infer("mIoU"), Some(Rule::Greater));
        assert_eq!(Rule::infer("bbox_mAP"), Some(Rule::Greater));
        assert_eq!(Rule::infer("loss"), Some(Rule::Less));
        assert_eq!(Rule::infer("val_loss"), Some(Rule::Less));
        assert_eq!(Rule::infer("f1_score"), None);
    }

    #[test]
    fn only_an_improvement_makes_a_new_best_and_replaces_the_old_file() {
        let cfg = SaveBestCfg {
            metric: "auto".into(),
            rule: None,
        };
        let mut tracker = SaveBest::new(cfg, None);
        let first = tracker
            .after_eval(
                &metrics(&[("accuracy_top-1", 70.0), ("accuracy_top-5", 99.0)]),
                "epoch_1",
            )
            .unwrap()
            .unwrap();
        assert_eq!(first.best.file, "best_accuracy_top-1_epoch_1.safetensors");
        assert_eq!(first.replaces, None);
        let worse = tracker.after_eval(&metrics(&[("accuracy_top-1", 69.0)]), "epoch_2");
        assert_eq!(worse.unwrap(), None);
        let better = tracker
            .after_eval(&metrics(&[("accuracy_top-1", 71.5)]), "epoch_3")
            .unwrap()
            .unwrap();
        assert_eq!(better.best.score, 71.5);
        assert_eq!(
            better.replaces.as_deref(),
            Some("best_accuracy_top-1_epoch_1.safetensors")
        );
    }

    #[test]
    fn a_metric_the_evaluation_lacks_or_without_a_rule_is_an_error() {
        let mut tracker = SaveBest::new(
            SaveBestCfg {
                metric: "mIoU".into(),
                rule: None,
            },
            None,
        );
        let err = tracker
            .after_eval(&metrics(&[("accuracy_top-1", 1.0)]), "epoch_1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("save_best = \"mIoU\": the evaluation reports accuracy_top-1"),
            "{err}"
        );
        let mut tracker = SaveBest::new(
            SaveBestCfg {
                metric: "f1_score".into(),
                rule: None,
            },
            None,
        );
        let err = tracker
            .after_eval(&metrics(&[("f1_score", 1.0)]), "epoch_1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("set evaluation.rule"), "{err}");
        let mut tracker = SaveBest::new(
            SaveBestCfg {
                metric: "f1_score".into(),
                rule: Some(Rule::Less),
            },
            None,
        );
        assert!(
            tracker
                .after_eval(&metrics(&[("f1_score", 1.0)]), "epoch_1")
                .unwrap()
                .is_some()
        );
        assert!(
            tracker
                .after_eval(&metrics(&[("f1_score", 0.5)]), "epoch_2")
                .unwrap()
                .is_some()
        );
        assert!(
            tracker
                .after_eval(&metrics(&[("f1_score", 0.7)]), "epoch_3")
                .unwrap()
                .is_none()
        );
    }
}
