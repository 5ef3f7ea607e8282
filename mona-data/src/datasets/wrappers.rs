//! mmdet's dataset wrappers: `RepeatDataset` (`times` passes over one dataset per epoch, so
//! short datasets keep the data loader busy) and `ConcatDataset` (`datasets`, a list, served
//! one after another, e.g. VOC 2007 + 2012 trainval). Both wrap any registered dataset.

use std::sync::Arc;

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Dataset, DatasetEntry, build_dataset};
use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;

/// `times` copies of a dataset back to back: index `i` is sample `i % len` of the inner one.
pub struct RepeatDataset {
    inner: Arc<dyn Dataset>,
    times: usize,
}

impl RepeatDataset {
    pub fn new(inner: Arc<dyn Dataset>, times: usize) -> Self {
        Self { inner, times }
    }
}

impl Dataset for RepeatDataset {
    fn len(&self) -> usize {
        self.inner.len() * self.times
    }

    fn load(&self, idx: usize, rng: &mut DataRng) -> Result<Results, DataError> {
        let n = self.inner.len();
        if idx >= self.len() || n == 0 {
            return Err(DataError::IndexOutOfRange {
                index: idx,
                len: self.len(),
            });
        }
        self.inner.load(idx % n, rng)
    }

    fn classes(&self) -> &[String] {
        self.inner.classes()
    }

    fn gt_labels(&self) -> Vec<usize> {
        let one = self.inner.gt_labels();
        (0..self.times).flat_map(|_| one.iter().copied()).collect()
    }

    /// mmdet `RepeatDataset.flag = np.tile(dataset.flag, times)`.
    fn group_flags(&self) -> Option<Vec<u8>> {
        let one = self.inner.group_flags()?;
        Some((0..self.times).flat_map(|_| one.iter().copied()).collect())
    }
}

/// Several datasets one after another (mmdet's `ConcatDataset`); the classes are those of the
/// first, and every part must have the same class list.
pub struct ConcatDataset {
    parts: Vec<Arc<dyn Dataset>>,
}

impl ConcatDataset {
    pub fn new(parts: Vec<Arc<dyn Dataset>>) -> Self {
        Self { parts }
    }
}

impl Dataset for ConcatDataset {
    fn len(&self) -> usize {
        self.parts.iter().map(|d| d.len()).sum()
    }

    fn load(&self, idx: usize, rng: &mut DataRng) -> Result<Results, DataError> {
        let mut i = idx;
        for d in &self.parts {
            if i < d.len() {
                let mut r = d.load(i, rng)?;
                r.index = idx;
                return Ok(r);
            }
            i -= d.len();
        }
        Err(DataError::IndexOutOfRange {
            index: idx,
            len: self.len(),
        })
    }

    fn classes(&self) -> &[String] {
        self.parts.first().map_or(&[], |d| d.classes())
    }

    fn gt_labels(&self) -> Vec<usize> {
        self.parts.iter().flat_map(|d| d.gt_labels()).collect()
    }

    /// mmdet `ConcatDataset.flag = np.concatenate([d.flag for d in datasets])`; `None` unless
    /// every part has flags (a part without them cannot be grouped).
    fn group_flags(&self) -> Option<Vec<u8>> {
        let mut flags = Vec::with_capacity(self.len());
        for d in &self.parts {
            flags.extend(d.group_flags()?);
        }
        Some(flags)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RepeatArgs {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    times: usize,
    #[serde(rename = "dataset")]
    _dataset: IgnoredAny,
}

fn build_repeat(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    let args: RepeatArgs = node.extract()?;
    if args.times == 0 {
        return Err(BuildError::invalid(
            node,
            Some("times"),
            "must be at least 1",
        ));
    }
    let inner: Arc<dyn Dataset> = Arc::from(build_dataset(&node.child("dataset")?)?);
    Ok(Box::new(RepeatDataset::new(inner, args.times)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConcatArgs {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(rename = "datasets")]
    _datasets: IgnoredAny,
    /// mmdet's flag for per-part evaluation; evaluation here always covers the whole.
    #[serde(default, rename = "separate_eval")]
    _separate_eval: Option<bool>,
}

fn build_concat(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    let _: ConcatArgs = node.extract()?;
    let list = node.child("datasets")?;
    let items = list.items();
    if items.is_empty() {
        return Err(BuildError::invalid(
            node,
            Some("datasets"),
            "expected a non-empty list of datasets",
        ));
    }
    let parts = items
        .iter()
        .map(|n| build_dataset(n).map(Arc::from))
        .collect::<Result<Vec<Arc<dyn Dataset>>, _>>()?;
    if let Some((i, _)) = parts
        .iter()
        .enumerate()
        .find(|(_, d)| d.classes() != parts[0].classes())
    {
        return Err(BuildError::invalid(
            &items[i],
            None,
            "its classes differ from those of the first dataset",
        ));
    }
    Ok(Box::new(ConcatDataset::new(parts)))
}

inventory::submit! { DatasetEntry::new("RepeatDataset", build_repeat) }
inventory::submit! { DatasetEntry::new("ConcatDataset", build_concat) }

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` samples whose `index` is `offset + i`.
    struct Fake {
        n: usize,
        offset: usize,
        classes: Vec<String>,
    }

    impl Dataset for Fake {
        fn len(&self) -> usize {
            self.n
        }

        fn load(&self, idx: usize, _rng: &mut DataRng) -> Result<Results, DataError> {
            let mut r = Results::new(format!("{}.jpg", self.offset + idx));
            r.gt_label = Some(self.offset + idx);
            Ok(r)
        }

        fn classes(&self) -> &[String] {
            &self.classes
        }

        fn gt_labels(&self) -> Vec<usize> {
            (0..self.n).map(|i| self.offset + i).collect()
        }

        /// Odd samples wide (flag 1), even ones tall; offset 100 = no flags.
        fn group_flags(&self) -> Option<Vec<u8>> {
            (self.offset != 100).then(|| (0..self.n).map(|i| (i % 2) as u8).collect())
        }
    }

    fn fake(n: usize, offset: usize) -> Arc<dyn Dataset> {
        Arc::new(Fake {
            n,
            offset,
            classes: vec!["a".into()],
        })
    }

    #[test]
    fn repeat_and_concat_index_like_mmdet() {
        let mut rng = crate::rng::sample_rng(0, 0, 0);
        let rep = RepeatDataset::new(fake(3, 0), 2);
        assert_eq!(rep.len(), 6);
        assert_eq!(rep.load(4, &mut rng).unwrap().gt_label, Some(1));
        assert_eq!(rep.gt_labels(), vec![0, 1, 2, 0, 1, 2]);
        assert!(rep.load(6, &mut rng).is_err());
        let cat = ConcatDataset::new(vec![fake(2, 0), fake(3, 10)]);
        assert_eq!(cat.len(), 5);
        let r = cat.load(3, &mut rng).unwrap();
        assert_eq!((r.gt_label, r.index), (Some(11), 3));
        assert_eq!(cat.gt_labels(), vec![0, 1, 10, 11, 12]);
        assert!(cat.load(5, &mut rng).is_err());
        assert_eq!(cat.classes(), ["a".to_string()]);
    }

    #[test]
    fn wrappers_forward_group_flags_like_mmdet() {
        let rep = RepeatDataset::new(fake(3, 0), 2);
        assert_eq!(rep.group_flags(), Some(vec![0, 1, 0, 0, 1, 0]));
        let cat = ConcatDataset::new(vec![fake(2, 0), fake(3, 10)]);
        assert_eq!(cat.group_flags(), Some(vec![0, 1, 0, 1, 0]));
        let mixed = ConcatDataset::new(vec![fake(2, 0), fake(3, 100)]);
        assert_eq!(mixed.group_flags(), None);
    }
}
