//! mmdet 2.x `GroupSampler` in the loader: single-group batches, padded groups, mmdet's epoch
//! length, and an order that depends on `(seed, epoch)` only (so resuming works).

use std::collections::BTreeSet;
use std::sync::Arc;

use mona_data::datasets::Dataset;
use mona_data::rng::DataRng;
use mona_data::{DataError, DataLoader, Results, group_epoch_order};

/// Samples whose label is their group flag.
struct Flagged {
    flags: Vec<u8>,
    /// Reports this many flags instead (to test the length check).
    report: Option<usize>,
}

impl Dataset for Flagged {
    fn len(&self) -> usize {
        self.flags.len()
    }

    fn load(&self, idx: usize, _rng: &mut DataRng) -> Result<Results, DataError> {
        let mut r = Results::new(format!("{idx}.jpg"));
        r.index = idx;
        r.gt_label = Some(usize::from(self.flags[idx]));
        Ok(r)
    }

    fn classes(&self) -> &[String] {
        &[]
    }

    fn gt_labels(&self) -> Vec<usize> {
        Vec::new()
    }

    fn group_flags(&self) -> Option<Vec<u8>> {
        let n = self.report.unwrap_or(self.flags.len());
        Some(self.flags.iter().copied().cycle().take(n).collect())
    }
}

/// 2 portrait (flag 0: 0, 3) and 5 landscape (flag 1) images.
const FLAGS: [u8; 7] = [0, 1, 1, 0, 1, 1, 1];

fn check_grouped(order: &[usize], flags: &[u8], spg: usize) {
    // mmdet num_samples: sum over groups of ceil(n_g / spg) * spg
    let mut sizes = [0usize; 256];
    for &f in flags {
        sizes[usize::from(f)] += 1;
    }
    let expected: usize = sizes.iter().map(|n| n.div_ceil(spg) * spg).sum();
    assert_eq!(order.len(), expected);
    for batch in order.chunks(spg) {
        assert_eq!(batch.len(), spg);
        let groups: BTreeSet<u8> = batch.iter().map(|&i| flags[i]).collect();
        assert_eq!(groups.len(), 1, "batch {batch:?} mixes groups");
    }
    let seen: BTreeSet<usize> = order.iter().copied().collect();
    assert_eq!(seen, (0..flags.len()).collect(), "every index is visited");
}

#[test]
fn group_order_like_mmdet() {
    // spg 2: group 0 has 2 -> 2, group 1 has 5 -> 6 (one repeat): 8 samples, 4 batches
    let order = group_epoch_order(&FLAGS, 2, 7, 0);
    assert_eq!(order.len(), 8);
    check_grouped(&order, &FLAGS, 2);
    // the padding repeats exactly one landscape image
    let landscape = order.iter().filter(|&&i| FLAGS[i] == 1).count();
    assert_eq!(landscape, 6);
    // spg 3: 3 + 6 = 9; spg 4: 4 + 8 = 12; spg 1: a permutation
    check_grouped(&group_epoch_order(&FLAGS, 3, 7, 0), &FLAGS, 3);
    assert_eq!(group_epoch_order(&FLAGS, 4, 7, 0).len(), 12);
    let mut one = group_epoch_order(&FLAGS, 1, 7, 0);
    one.sort_unstable();
    assert_eq!(one, (0..7).collect::<Vec<_>>());
    // more than two groups and a single-group set
    let many = [2, 0, 2, 2, 5, 0];
    check_grouped(&group_epoch_order(&many, 2, 1, 3), &many, 2);
    let single = [1u8; 5];
    check_grouped(&group_epoch_order(&single, 2, 1, 3), &single, 2);
    assert!(group_epoch_order(&[], 2, 1, 3).is_empty());
}

#[test]
fn group_order_depends_on_seed_and_epoch_only() {
    let flags: Vec<u8> = (0..40).map(|i| u8::from(i % 3 == 0)).collect();
    let a = group_epoch_order(&flags, 4, 11, 5);
    assert_eq!(a, group_epoch_order(&flags, 4, 11, 5));
    assert_ne!(a, group_epoch_order(&flags, 4, 11, 6));
    assert_ne!(a, group_epoch_order(&flags, 4, 12, 5));
    check_grouped(&a, &flags, 4);
}

fn indices(loader: &DataLoader, epoch: u64, start: usize) -> Vec<Vec<usize>> {
    loader
        .iter_epoch(epoch, start)
        .map(|b| b.unwrap().iter().map(|r| r.index).collect())
        .collect()
}

#[test]
fn shuffling_loader_groups_batches() {
    let ds: Arc<dyn Dataset> = Arc::new(Flagged {
        flags: FLAGS.to_vec(),
        report: None,
    });
    for workers in [0, 2] {
        let loader = DataLoader::new(Arc::clone(&ds), 4, true, 3, workers, false).unwrap();
        assert!(loader.is_grouped());
        // 4 + 8 samples in batches of 4
        assert_eq!(loader.epoch_len(), 3);
        let batches = indices(&loader, 2, 0);
        assert_eq!(batches.len(), 3);
        let flat: Vec<usize> = batches.concat();
        assert_eq!(flat, loader.order(2));
        check_grouped(&flat, &FLAGS, 4);
        // resuming at batch 1 gives the same tail
        assert_eq!(indices(&loader, 2, 1), batches[1..].to_vec());
        // the sample's own group travels with it
        for b in loader.iter_epoch(2, 0) {
            let b = b.unwrap();
            assert!(
                b.iter()
                    .all(|r| r.gt_label == Some(usize::from(FLAGS[r.index])))
            );
        }
    }
    // drop_last changes nothing: every grouped batch is full
    let dropping = DataLoader::new(Arc::clone(&ds), 4, true, 3, 0, true).unwrap();
    assert_eq!(dropping.epoch_len(), 3);
    // without shuffling, mmdet's test loader: plain order, no grouping
    let plain = DataLoader::new(Arc::clone(&ds), 4, false, 3, 0, false).unwrap();
    assert!(!plain.is_grouped());
    assert_eq!(plain.epoch_len(), 2);
    assert_eq!(indices(&plain, 0, 0), vec![vec![0, 1, 2, 3], vec![4, 5, 6]]);
}

#[test]
fn wrong_number_of_flags_is_an_error() {
    let ds: Arc<dyn Dataset> = Arc::new(Flagged {
        flags: FLAGS.to_vec(),
        report: Some(6),
    });
    let msg = DataLoader::new(ds, 2, true, 0, 0, false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("6 group flags for 7 samples"), "{msg}");
}
