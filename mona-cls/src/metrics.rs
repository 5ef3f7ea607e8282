//! mmcls `accuracy`: the percentage of samples whose label is among the k highest scores.

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
}
