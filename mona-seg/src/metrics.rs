//! mmseg's `mean_iou` / `eval_metrics`: per-class intersection, union, prediction and label
//! areas summed over the whole dataset; pixels labelled `ignore_index` are dropped; with
//! `reduce_zero_label` label 0 becomes ignored and the others shift by −1 (done by the
//! dataset before it reaches here). A class whose union (IoU) or label area (Acc) is 0 gets
//! NaN and is left out of the mean (`np.nanmean`).
//!
//! The metrics `evaluation.metric` and `test --metrics` name are entries of the segmentation
//! metric registry (`mIoU`, `mDice`, `mFscore` as mmseg computes them, and the single keys
//! `mAcc`, `aAcc`); other crates can add to it.

use std::collections::BTreeMap;

use mona_core::runner::Metrics;

/// Accumulated areas of a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct SegStats {
    pub num_classes: usize,
    pub intersect: Vec<u64>,
    pub union: Vec<u64>,
    pub pred_area: Vec<u64>,
    pub label_area: Vec<u64>,
}

impl SegStats {
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            intersect: vec![0; num_classes],
            union: vec![0; num_classes],
            pred_area: vec![0; num_classes],
            label_area: vec![0; num_classes],
        }
    }

    /// The areas summed over the ranks of `group` (a sharded evaluation): counts below 2⁵³
    /// travel exactly as f64.
    pub fn summed_over(
        &self,
        group: &mona_core::dist::SharedGroup,
    ) -> Result<Self, mona_core::dist::DistError> {
        let parts = [
            &self.intersect,
            &self.union,
            &self.pred_area,
            &self.label_area,
        ];
        let mut flat: Vec<f64> = parts
            .iter()
            .flat_map(|p| p.iter().map(|&v| v as f64))
            .collect();
        group.all_reduce_sum_f64("segmentation areas", &mut flat)?;
        let k = self.num_classes;
        let take = |i: usize| flat[i * k..(i + 1) * k].iter().map(|&v| v as u64).collect();
        Ok(Self {
            num_classes: k,
            intersect: take(0),
            union: take(1),
            pred_area: take(2),
            label_area: take(3),
        })
    }

    /// Adds one image. `pred` and `label` have the same length; labels equal to
    /// `ignore_index` (and any label ≥ `num_classes`, as mmseg's histogram range drops them)
    /// are skipped.
    pub fn add(&mut self, pred: &[u8], label: &[u8], ignore_index: u8) {
        let k = self.num_classes;
        let mut inter = vec![0u64; k];
        let mut parea = vec![0u64; k];
        let mut larea = vec![0u64; k];
        for (&p, &l) in pred.iter().zip(label) {
            if l == ignore_index {
                continue;
            }
            let (p, l) = (p as usize, l as usize);
            if l < k {
                larea[l] += 1;
            }
            if p < k {
                parea[p] += 1;
            }
            if p == l && l < k {
                inter[l] += 1;
            }
        }
        for c in 0..k {
            self.intersect[c] += inter[c];
            self.pred_area[c] += parea[c];
            self.label_area[c] += larea[c];
            self.union[c] += parea[c] + larea[c] - inter[c];
        }
    }

    /// Per-class IoU (NaN when the union is 0).
    pub fn iou(&self) -> Vec<f64> {
        (0..self.num_classes)
            .map(|c| ratio(self.intersect[c], self.union[c]))
            .collect()
    }

    /// Per-class accuracy (NaN when the class has no labelled pixel).
    pub fn acc(&self) -> Vec<f64> {
        (0..self.num_classes)
            .map(|c| ratio(self.intersect[c], self.label_area[c]))
            .collect()
    }

    /// Overall pixel accuracy.
    pub fn a_acc(&self) -> f64 {
        ratio(self.intersect.iter().sum(), self.label_area.iter().sum())
    }

    /// Per-class Dice, 2·intersection ÷ (prediction + label area) (NaN when both are 0).
    pub fn dice(&self) -> Vec<f64> {
        (0..self.num_classes)
            .map(|c| {
                ratio(
                    2 * self.intersect[c],
                    self.pred_area[c] + self.label_area[c],
                )
            })
            .collect()
    }

    /// Per-class precision (intersection ÷ prediction area) and recall (÷ label area), and
    /// their F-score with β = 1, 2PR ÷ (P + R): NaN where a ratio's denominator is 0, as
    /// mmseg's `f_score` on tensors gives.
    pub fn fscore(&self) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let precision: Vec<f64> = (0..self.num_classes)
            .map(|c| ratio(self.intersect[c], self.pred_area[c]))
            .collect();
        let recall = self.acc();
        let f = precision
            .iter()
            .zip(&recall)
            .map(|(&p, &r)| 2.0 * p * r / (p + r))
            .collect();
        (f, precision, recall)
    }

    /// `mIoU`, `mAcc`, `aAcc` in percent (mmseg reports them ×100), plus `IoU.<class>`.
    pub fn metrics(&self, class_names: &[String]) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        m.insert("mIoU".into(), nanmean(&self.iou()) * 100.0);
        m.insert("mAcc".into(), nanmean(&self.acc()) * 100.0);
        m.insert("aAcc".into(), self.a_acc() * 100.0);
        per_class(&mut m, "IoU", &self.iou(), class_names);
        m
    }
}

/// `<prefix>.<class>` in percent for every class whose value is not NaN.
fn per_class(m: &mut Metrics, prefix: &str, values: &[f64], class_names: &[String]) {
    for (c, &v) in values.iter().enumerate() {
        if !v.is_nan() {
            let name = class_names.get(c).cloned().unwrap_or_else(|| c.to_string());
            m.insert(format!("{prefix}.{name}"), v * 100.0);
        }
    }
}

mona_core::declare_registry! {
    /// Segmentation metrics, by the name `evaluation.metric` and `test --metrics` give: each
    /// entry turns the dataset's accumulated areas and its class names into named values.
    /// Open to other crates: a plugin submits a `SegMetricEntry` and its name becomes valid.
    pub struct SegMetricEntry: "metric" => fn(&SegStats, &[String]) -> Metrics;
}

inventory::submit! { SegMetricEntry::new("mIoU", SegStats::metrics) }
inventory::submit! { SegMetricEntry::new("mAcc", |s, _| single("mAcc", nanmean(&s.acc()))) }
inventory::submit! { SegMetricEntry::new("aAcc", |s, _| single("aAcc", s.a_acc())) }
inventory::submit! { SegMetricEntry::new("mDice", dice_metrics) }
inventory::submit! { SegMetricEntry::new("mFscore", fscore_metrics) }

/// One value in percent.
fn single(key: &str, value: f64) -> Metrics {
    Metrics::from([(key.to_string(), value * 100.0)])
}

/// mmseg's `mDice`: `mDice`, `mAcc`, `aAcc` and `Dice.<class>`, in percent.
fn dice_metrics(s: &SegStats, class_names: &[String]) -> Metrics {
    let mut m = Metrics::new();
    m.insert("mDice".into(), nanmean(&s.dice()) * 100.0);
    m.insert("mAcc".into(), nanmean(&s.acc()) * 100.0);
    m.insert("aAcc".into(), s.a_acc() * 100.0);
    per_class(&mut m, "Dice", &s.dice(), class_names);
    m
}

/// mmseg's `mFscore` (β = 1): `mFscore`, `mPrecision`, `mRecall`, `aAcc` and
/// `Fscore.<class>`, in percent.
fn fscore_metrics(s: &SegStats, class_names: &[String]) -> Metrics {
    let (f, p, r) = s.fscore();
    let mut m = Metrics::new();
    m.insert("mFscore".into(), nanmean(&f) * 100.0);
    m.insert("mPrecision".into(), nanmean(&p) * 100.0);
    m.insert("mRecall".into(), nanmean(&r) * 100.0);
    m.insert("aAcc".into(), s.a_acc() * 100.0);
    per_class(&mut m, "Fscore", &f, class_names);
    m
}

/// The metrics `asked` of the segmentation metric registry. Callers check the names before
/// any work; an unregistered one reaching here is still an error, never skipped.
pub fn seg_metrics(
    stats: &SegStats,
    class_names: &[String],
    asked: &[String],
) -> Result<Metrics, crate::error::SegError> {
    let mut m = Metrics::new();
    for name in asked {
        let entry = mona_core::registry::find::<SegMetricEntry>(name)
            .ok_or_else(|| crate::error::SegError::UnknownMetric(name.clone()))?;
        m.extend((entry.build)(stats, class_names));
    }
    Ok(m)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

/// Mean of the non-NaN values; NaN when all are NaN.
pub fn nanmean(v: &[f64]) -> f64 {
    let vals: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if vals.is_empty() {
        f64::NAN
    } else {
        vals.iter().sum::<f64>() / vals.len() as f64
    }
}

/// mmseg's `reduce_zero_label` on a label map: 0 → 255, others − 1 (255 stays 255).
pub fn reduce_zero_label(label: &mut [u8]) {
    for v in label.iter_mut() {
        *v = match *v {
            0 | 255 => 255,
            x => x - 1,
        };
    }
}
