//! mmdet's `RandomSampler` (via `BaseSampler.sample`): optionally prepends the GT boxes to the
//! candidates (`add_gt_as_proposals`), then draws at most `num · pos_fraction` positives and
//! fills up to `num` with negatives, each uniformly without replacement.
//!
//! mmdet draws with `torch.randperm`; that stream cannot be reproduced, so draws come from a
//! small seeded generator ([`SamplerRng`]) instead: the *distribution* is mmdet's (uniform
//! subsets of the right sizes) and a run is bit-reproducible from its seed. Sampled indices
//! come back sorted ascending, as mmdet's `.unique()` returns them.

use crate::ops::boxes::Box4;
use serde::Deserialize;

use crate::assigner::AssignResult;

/// The `sampler` config of mmdet (`type = "RandomSampler"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomSamplerConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub num: usize,
    pub pos_fraction: f64,
    /// Upper bound of negatives per positive; `< 0` means none.
    #[serde(default = "minus_one")]
    pub neg_pos_ub: f64,
    #[serde(default = "yes")]
    pub add_gt_as_proposals: bool,
}

fn minus_one() -> f64 {
    -1.0
}
fn yes() -> bool {
    true
}

/// A SplitMix64 stream: tiny, portable, fully specified (the same numbers on every
/// platform and release), which is all the sampler needs from a generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplerRng {
    state: u64,
}

impl SamplerRng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for a tuple such as `(seed, iteration, image, stage)`: distinct tuples give
    /// unrelated streams, so no generator has to be carried across calls.
    pub fn from_parts(parts: &[u64]) -> Self {
        let mut state = 0x243f_6a88_85a3_08d3_u64;
        for &p in parts {
            state = mix(state ^ p);
        }
        Self { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in `0..n` (Lemire's multiply-and-reject, unbiased); `n > 0`.
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as usize;
            }
        }
    }

    /// `num` distinct elements of `gallery` chosen uniformly (partial Fisher–Yates), sorted.
    pub fn choose_sorted(&mut self, gallery: &[usize], num: usize) -> Vec<usize> {
        let mut g = gallery.to_vec();
        let num = num.min(g.len());
        for i in 0..num {
            let j = i + self.below(g.len() - i);
            g.swap(i, j);
        }
        g.truncate(num);
        g.sort_unstable();
        g
    }
}

fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// mmdet's `SamplingResult`. Indices refer to the candidate list the sampler saw, i.e. with
/// the GT boxes first when they were added as proposals.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingResult {
    pub pos_inds: Vec<usize>,
    pub neg_inds: Vec<usize>,
    pub pos_bboxes: Vec<Box4>,
    pub neg_bboxes: Vec<Box4>,
    /// Whether each positive is a GT box added as a proposal.
    pub pos_is_gt: Vec<bool>,
    /// 0-based GT index of each positive.
    pub pos_assigned_gt_inds: Vec<usize>,
    pub pos_gt_bboxes: Vec<Box4>,
    /// GT label of each positive (−1 where the assignment had no labels).
    pub pos_gt_labels: Vec<i64>,
    pub num_gts: usize,
}

impl SamplingResult {
    /// `bboxes` of mmdet's `bbox2roi` order: positives, then negatives.
    pub fn bboxes(&self) -> Vec<Box4> {
        self.pos_bboxes
            .iter()
            .chain(&self.neg_bboxes)
            .copied()
            .collect()
    }
}

/// The sampler.
#[derive(Debug, Clone)]
pub struct RandomSampler {
    pub cfg: RandomSamplerConfig,
}

impl RandomSampler {
    pub fn new(cfg: RandomSamplerConfig) -> Self {
        Self { cfg }
    }

    /// `sample(assign_result, bboxes, gt_bboxes, gt_labels)`. `assign` must be the
    /// assignment of `bboxes`; when GTs are added as proposals they get `gt_inds` 1..=k,
    /// overlap 1 and their own labels (mmdet's `add_gt_`), ahead of the candidates.
    pub fn sample(
        &self,
        assign: &AssignResult,
        bboxes: &[Box4],
        gt_bboxes: &[Box4],
        gt_labels: &[i64],
        rng: &mut SamplerRng,
    ) -> SamplingResult {
        let add_gt = self.cfg.add_gt_as_proposals && !gt_bboxes.is_empty();
        let (cands, gt_inds, labels, is_gt): (Vec<Box4>, Vec<i64>, Vec<i64>, Vec<bool>) = if add_gt
        {
            let k = gt_bboxes.len();
            (
                gt_bboxes.iter().chain(bboxes).copied().collect(),
                (1..=k as i64)
                    .chain(assign.gt_inds.iter().copied())
                    .collect(),
                (0..k)
                    .map(|i| gt_labels.get(i).copied().unwrap_or(-1))
                    .chain(assign.labels.iter().copied())
                    .collect(),
                std::iter::repeat_n(true, k)
                    .chain(std::iter::repeat_n(false, bboxes.len()))
                    .collect(),
            )
        } else {
            (
                bboxes.to_vec(),
                assign.gt_inds.clone(),
                assign.labels.clone(),
                vec![false; bboxes.len()],
            )
        };
        let num_expected_pos = (self.cfg.num as f64 * self.cfg.pos_fraction) as usize;
        let pos_all: Vec<usize> = (0..gt_inds.len()).filter(|&i| gt_inds[i] > 0).collect();
        let pos_inds = if pos_all.len() <= num_expected_pos {
            pos_all
        } else {
            rng.choose_sorted(&pos_all, num_expected_pos)
        };
        let mut num_expected_neg = self.cfg.num.saturating_sub(pos_inds.len());
        if self.cfg.neg_pos_ub >= 0.0 {
            let pos = pos_inds.len().max(1) as f64;
            let bound = (self.cfg.neg_pos_ub * pos) as usize;
            num_expected_neg = num_expected_neg.min(bound);
        }
        let neg_all: Vec<usize> = (0..gt_inds.len()).filter(|&i| gt_inds[i] == 0).collect();
        let neg_inds = if neg_all.len() <= num_expected_neg {
            neg_all
        } else {
            rng.choose_sorted(&neg_all, num_expected_neg)
        };
        let pos_assigned_gt_inds: Vec<usize> =
            pos_inds.iter().map(|&i| gt_inds[i] as usize - 1).collect();
        SamplingResult {
            pos_bboxes: pos_inds.iter().map(|&i| cands[i]).collect(),
            neg_bboxes: neg_inds.iter().map(|&i| cands[i]).collect(),
            pos_is_gt: pos_inds.iter().map(|&i| is_gt[i]).collect(),
            pos_gt_bboxes: pos_assigned_gt_inds.iter().map(|&g| gt_bboxes[g]).collect(),
            pos_gt_labels: pos_inds
                .iter()
                .map(|&i| labels.get(i).copied().unwrap_or(-1))
                .collect(),
            pos_assigned_gt_inds,
            pos_inds,
            neg_inds,
            num_gts: gt_bboxes.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(gt_inds: Vec<i64>, num_gts: usize) -> AssignResult {
        let labels = gt_inds
            .iter()
            .map(|&g| if g > 0 { 10 + g } else { -1 })
            .collect();
        AssignResult {
            num_gts,
            max_overlaps: vec![0.5; gt_inds.len()],
            gt_inds,
            labels,
        }
    }

    fn sampler(num: usize, pos_fraction: f64, neg_pos_ub: f64, add_gt: bool) -> RandomSampler {
        RandomSampler::new(RandomSamplerConfig {
            kind: None,
            num,
            pos_fraction,
            neg_pos_ub,
            add_gt_as_proposals: add_gt,
        })
    }

    #[test]
    fn rng_is_deterministic_and_uniform_enough() {
        let mut a = SamplerRng::new(42);
        let mut b = SamplerRng::new(42);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        // SplitMix64's published first output for seed 0
        assert_eq!(SamplerRng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
        let mut counts = [0usize; 5];
        let mut r = SamplerRng::from_parts(&[1, 2, 3]);
        for _ in 0..50_000 {
            counts[r.below(5)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
        assert_ne!(
            SamplerRng::from_parts(&[1, 2]),
            SamplerRng::from_parts(&[2, 1])
        );
    }

    #[test]
    fn counts_follow_num_and_pos_fraction() {
        // 300 positives (gt 1/2), 1000 negatives, 50 ignored
        let mut g = Vec::new();
        g.extend((0..300).map(|i| 1 + (i % 2) as i64));
        g.extend(std::iter::repeat_n(0, 1000));
        g.extend(std::iter::repeat_n(-1, 50));
        let boxes: Vec<Box4> = (0..g.len())
            .map(|i| [i as f32, 0.0, i as f32 + 1.0, 1.0])
            .collect();
        let gts = [[0.0, 0.0, 5.0, 5.0], [1.0, 1.0, 6.0, 6.0]];
        let a = assign(g.clone(), 2);
        let mut rng = SamplerRng::new(7);
        let r = sampler(256, 0.5, -1.0, false).sample(&a, &boxes, &gts, &[3, 4], &mut rng);
        assert_eq!((r.pos_inds.len(), r.neg_inds.len()), (128, 128));
        assert!(r.pos_inds.windows(2).all(|w| w[0] < w[1]));
        assert!(r.pos_inds.iter().all(|&i| g[i] > 0));
        assert!(r.neg_inds.iter().all(|&i| g[i] == 0));
        assert!(r.pos_is_gt.iter().all(|&x| !x));
        for (k, &i) in r.pos_inds.iter().enumerate() {
            assert_eq!(r.pos_assigned_gt_inds[k], g[i] as usize - 1);
            assert_eq!(r.pos_gt_bboxes[k], gts[g[i] as usize - 1]);
            assert_eq!(r.pos_gt_labels[k], 10 + g[i]);
            assert_eq!(r.pos_bboxes[k], boxes[i]);
        }
        // same seed, same draw; another seed, another draw
        let again = sampler(256, 0.5, -1.0, false).sample(
            &a,
            &boxes,
            &gts,
            &[3, 4],
            &mut SamplerRng::new(7),
        );
        assert_eq!(again, r);
        let other = sampler(256, 0.5, -1.0, false).sample(
            &a,
            &boxes,
            &gts,
            &[3, 4],
            &mut SamplerRng::new(8),
        );
        assert_ne!(other.pos_inds, r.pos_inds);

        // few positives: all of them, negatives fill up to num (512 · 0.25 = 128 expected)
        let mut few = vec![0i64; 1000];
        few[3] = 1;
        few[500] = 2;
        let boxes: Vec<Box4> = (0..1000)
            .map(|i| [i as f32, 0.0, i as f32 + 1.0, 1.0])
            .collect();
        let r = sampler(512, 0.25, -1.0, false).sample(
            &assign(few.clone(), 2),
            &boxes,
            &gts,
            &[3, 4],
            &mut rng,
        );
        assert_eq!(r.pos_inds, vec![3, 500]);
        assert_eq!(r.neg_inds.len(), 510);
        // neg_pos_ub 3: at most 3 negatives per positive
        let r =
            sampler(512, 0.25, 3.0, false).sample(&assign(few, 2), &boxes, &gts, &[3, 4], &mut rng);
        assert_eq!(r.neg_inds.len(), 6);
        // no positives, neg_pos_ub 3 → max(1, 0) · 3 = 3 negatives
        let r = sampler(512, 0.25, 3.0, false).sample(
            &assign(vec![0; 1000], 0),
            &boxes,
            &[],
            &[],
            &mut rng,
        );
        assert_eq!((r.pos_inds.len(), r.neg_inds.len()), (0, 3));
        // fewer candidates than num: everything
        let r = sampler(512, 0.25, -1.0, false).sample(
            &assign(vec![0, 1, 0, -1], 1),
            &boxes[..4],
            &gts[..1],
            &[3],
            &mut rng,
        );
        assert_eq!((r.pos_inds, r.neg_inds), (vec![1], vec![0, 2]));
    }

    #[test]
    fn gt_as_proposals_come_first_and_are_positive() {
        let gts = [
            [0.0, 0.0, 10.0, 10.0],
            [20.0, 20.0, 30.0, 30.0],
            [5.0, 5.0, 8.0, 8.0],
        ];
        let boxes: Vec<Box4> = (0..6)
            .map(|i| [i as f32, 0.0, i as f32 + 4.0, 4.0])
            .collect();
        // candidate 2 is matched to GT 2 (index 1), the rest negative / ignored
        let a = assign(vec![0, 0, 2, -1, 0, 0], 3);
        let mut rng = SamplerRng::new(1);
        let r = sampler(512, 0.25, -1.0, true).sample(&a, &boxes, &gts, &[7, 8, 9], &mut rng);
        // the 3 GTs (indices 0..3) and candidate 2 (index 3 + 2 = 5) are the positives
        assert_eq!(r.pos_inds, vec![0, 1, 2, 5]);
        assert_eq!(r.pos_is_gt, vec![true, true, true, false]);
        assert_eq!(r.pos_assigned_gt_inds, vec![0, 1, 2, 1]);
        assert_eq!(r.pos_gt_labels, vec![7, 8, 9, 10 + 2]);
        assert_eq!(r.pos_bboxes[..3], gts[..]);
        assert_eq!(r.pos_gt_bboxes, vec![gts[0], gts[1], gts[2], gts[1]]);
        // negatives shift by 3 as well; the ignored candidate (3 → 6) is never drawn
        assert_eq!(r.neg_inds, vec![3, 4, 7, 8]);
        assert_eq!(r.neg_bboxes, vec![boxes[0], boxes[1], boxes[4], boxes[5]]);
        assert_eq!(r.bboxes().len(), 8);
        // the RPN setting (add_gt_as_proposals false) leaves the candidates alone
        let r = sampler(512, 0.25, -1.0, false).sample(&a, &boxes, &gts, &[7, 8, 9], &mut rng);
        assert_eq!((r.pos_inds, r.pos_is_gt), (vec![2], vec![false]));
        // no GT: nothing to add even when asked
        let r = sampler(512, 0.25, -1.0, true).sample(
            &assign(vec![0; 6], 0),
            &boxes,
            &[],
            &[],
            &mut rng,
        );
        assert_eq!((r.pos_inds.len(), r.neg_inds.len()), (0, 6));
    }
}
