//! mmcls' classification metrics: `accuracy` (the percentage of samples whose label is
//! among the k highest scores) and `precision` / `recall` / `f1_score` (per class, then
//! their mean over the classes).

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
}
