//! mmcls' classification metrics: `accuracy` (the percentage of samples whose label is
//! among the k highest scores) and `precision` / `recall` / `f1_score` (per class, then
//! their mean over the classes). Each is an entry of the classification metric registry,
//! which other crates can add to.

use mona_core::runner::Metrics;

use crate::error::ClsError;

/// Whether `label` is among the `k` highest of `scores` (ties broken by lower index first,
/// as a stable descending sort does).
pub fn topk_correct(scores: &[f32], label: usize, k: usize) -> bool {
    let Some(&target) = scores.get(label) else {
        return false;
    };
    // Count classes ranked strictly before `label`.
    let ahead = scores
        .iter()
        .enumerate()
        .filter(|(i, s)| **s > target || (**s == target && *i < label))
        .count();
    ahead < k
}

/// The highest score of `scores` and its class (the first of tied ones; class 0 with
/// `f32::MIN` when no score exceeds it).
pub fn top1(scores: &[f32]) -> (usize, f32) {
    scores.iter().enumerate().fold(
        (0, f32::MIN),
        |best, (j, &v)| if v > best.1 { (j, v) } else { best },
    )
}

/// Top-k accuracy in percent over rows of `scores` (`n × classes`, row-major).
pub fn accuracy_topk(scores: &[f32], classes: usize, labels: &[usize], k: usize) -> f64 {
    if labels.is_empty() || classes == 0 {
        return 0.0;
    }
    let correct = labels
        .iter()
        .enumerate()
        .filter(|(i, l)| topk_correct(&scores[i * classes..(i + 1) * classes], **l, k))
        .count();
    100.0 * correct as f64 / labels.len() as f64
}

/// Macro-averaged precision, recall and F1 in percent, as mmcls' `precision_recall_f1` with
/// `average_mode = 'macro'` and `thrs = 0`: each sample predicts its highest-scoring class
/// (the first of tied ones) when that score is above 0; per class, precision is correct ÷
/// predicted and recall correct ÷ actual (each denominator at least 1), F1 is
/// 2PR / (P + R) (0 where P + R is 0); each is averaged over all `classes` columns.
pub fn precision_recall_f1(scores: &[f32], classes: usize, labels: &[usize]) -> (f64, f64, f64) {
    if classes == 0 {
        return (0.0, 0.0, 0.0);
    }
    let (mut correct, mut predicted, mut actual) = (
        vec![0usize; classes],
        vec![0usize; classes],
        vec![0usize; classes],
    );
    for (i, &label) in labels.iter().enumerate() {
        let (best, score) = top1(&scores[i * classes..(i + 1) * classes]);
        if let Some(a) = actual.get_mut(label) {
            *a += 1;
        }
        if score > 0.0 {
            predicted[best] += 1;
            if best == label {
                correct[best] += 1;
            }
        }
    }
    let (mut p_sum, mut r_sum, mut f_sum) = (0.0, 0.0, 0.0);
    for c in 0..classes {
        let p = correct[c] as f64 / predicted[c].max(1) as f64 * 100.0;
        let r = correct[c] as f64 / actual[c].max(1) as f64 * 100.0;
        let f = 2.0 * p * r / (p + r).max(f32::EPSILON as f64);
        p_sum += p;
        r_sum += r;
        f_sum += f;
    }
    let n = classes as f64;
    (p_sum / n, r_sum / n, f_sum / n)
}

/// What a classification metric scores: per-class scores of `labels.len()` samples
/// (`n × classes`, row-major) and their labels.
pub struct ClsScores<'a> {
    pub scores: &'a [f32],
    pub classes: usize,
    pub labels: &'a [usize],
}

mona_core::declare_registry! {
    /// Classification metrics, by the name `evaluation.metric` and `test --metrics` give.
    /// Open to other crates: a plugin submits a `ClsMetricEntry` and its name becomes valid.
    pub struct ClsMetricEntry: "metric" => fn(&ClsScores<'_>) -> Metrics;
}

inventory::submit! { ClsMetricEntry::new("accuracy", |s| accuracy_metrics(s.scores, s.classes, s.labels)) }
inventory::submit! { ClsMetricEntry::new("accuracy_top-1", |s| accuracy_key(s, "accuracy_top-1")) }
inventory::submit! { ClsMetricEntry::new("accuracy_top-5", |s| accuracy_key(s, "accuracy_top-5")) }
inventory::submit! { ClsMetricEntry::new("precision", |s| prf_key(s, "precision")) }
inventory::submit! { ClsMetricEntry::new("recall", |s| prf_key(s, "recall")) }
inventory::submit! { ClsMetricEntry::new("f1_score", |s| prf_key(s, "f1_score")) }

/// top-1 / top-5 accuracy (mmcls `accuracy` with topk (1, 5)), in percent; top-5 only with
/// at least 5 classes.
pub fn accuracy_metrics(scores: &[f32], classes: usize, labels: &[usize]) -> Metrics {
    let mut m = Metrics::new();
    m.insert(
        "accuracy_top-1".to_string(),
        accuracy_topk(scores, classes, labels, 1),
    );
    if classes >= 5 {
        m.insert(
            "accuracy_top-5".to_string(),
            accuracy_topk(scores, classes, labels, 5),
        );
    }
    m
}

/// One key of [`accuracy_metrics`] (nothing for top-5 under 5 classes).
fn accuracy_key(s: &ClsScores<'_>, key: &str) -> Metrics {
    accuracy_metrics(s.scores, s.classes, s.labels)
        .into_iter()
        .filter(|(k, _)| k == key)
        .collect()
}

/// One of [`precision_recall_f1`]'s values.
fn prf_key(s: &ClsScores<'_>, key: &str) -> Metrics {
    let (p, r, f) = precision_recall_f1(s.scores, s.classes, s.labels);
    [("precision", p), ("recall", r), ("f1_score", f)]
        .into_iter()
        .filter(|(k, _)| *k == key)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// The metrics `asked` (registered names; empty: `accuracy`), as mmcls' `evaluate` reports
/// them. A name the registry lacks is an error (callers check names up front).
pub fn cls_metrics(
    scores: &[f32],
    classes: usize,
    labels: &[usize],
    asked: &[String],
) -> Result<Metrics, ClsError> {
    let input = ClsScores {
        scores,
        classes,
        labels,
    };
    let default = ["accuracy".to_string()];
    let asked = if asked.is_empty() {
        &default[..]
    } else {
        asked
    };
    let mut metrics = Metrics::new();
    for name in asked {
        let entry = mona_core::registry::find::<ClsMetricEntry>(name)
            .ok_or_else(|| ClsError::UnknownMetric(name.clone()))?;
        metrics.extend((entry.build)(&input));
    }
    Ok(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // 3 samples, 4 classes.
        let scores = [
            0.1, 0.7, 0.1, 0.1, // argmax 1
            0.4, 0.3, 0.2, 0.1, // order 0,1,2,3
            0.25, 0.25, 0.25, 0.25, // all tied: order 0,1,2,3
        ];
        let labels = [1, 2, 3];
        assert_eq!(accuracy_topk(&scores, 4, &labels, 1), 100.0 / 3.0);
        assert_eq!(accuracy_topk(&scores, 4, &labels, 3), 200.0 / 3.0);
        assert_eq!(accuracy_topk(&scores, 4, &labels, 4), 100.0);
        assert!(
            !topk_correct(&scores[0..4], 7, 4),
            "out-of-range label never counts"
        );
    }

    #[test]
    fn precision_recall_f1_known_answer() {
        // 3 classes; predictions 0, 0, 1, 2 for labels 0, 1, 1, 1.
        let scores = [
            0.8, 0.1, 0.1, //
            0.6, 0.3, 0.1, //
            0.2, 0.7, 0.1, //
            0.1, 0.2, 0.7,
        ];
        let (p, r, f) = precision_recall_f1(&scores, 3, &[0, 1, 1, 1]);
        // class 0: P 1/2, R 1/1; class 1: P 1/1, R 1/3; class 2: P 0/1, R 0/max(0,1).
        let per_class = [(50.0, 100.0), (100.0, 100.0 / 3.0), (0.0, 0.0)];
        let f1 = |p: f64, r: f64| {
            if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            }
        };
        let want_p = per_class.iter().map(|c| c.0).sum::<f64>() / 3.0;
        let want_r = per_class.iter().map(|c| c.1).sum::<f64>() / 3.0;
        let want_f = per_class.iter().map(|c| f1(c.0, c.1)).sum::<f64>() / 3.0;
        assert!((p - want_p).abs() < 1e-9, "{p} vs {want_p}");
        assert!((r - want_r).abs() < 1e-9, "{r} vs {want_r}");
        assert!((f - want_f).abs() < 1e-9, "{f} vs {want_f}");
        assert!((p - 50.0).abs() < 1e-9 && (r - 44.444_444_444).abs() < 1e-6);
    }

    #[test]
    fn registered_names_select_their_keys() {
        let scores = [
            0.1, 0.7, 0.1, 0.1, 0.0, //
            0.4, 0.3, 0.2, 0.1, 0.0,
        ];
        let labels = [1, 2];
        let asked = |names: &[&str]| -> Vec<String> {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            cls_metrics(&scores, 5, &labels, &names)
                .unwrap()
                .into_keys()
                .collect()
        };
        assert_eq!(asked(&[]), ["accuracy_top-1", "accuracy_top-5"]);
        assert_eq!(asked(&["accuracy_top-5"]), ["accuracy_top-5"]);
        assert_eq!(
            asked(&["recall", "accuracy_top-1"]),
            ["accuracy_top-1", "recall"]
        );
        let err = cls_metrics(&scores, 5, &labels, &["top1".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metric \"top1\" is not registered for classification"
        );
    }
}
