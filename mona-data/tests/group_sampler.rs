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

/// A dataset of `n` samples without groups.
struct Plain(usize);

impl Dataset for Plain {
    fn len(&self) -> usize {
        self.0
    }

    fn load(&self, idx: usize, _rng: &mut DataRng) -> Result<Results, DataError> {
        let mut r = Results::new(format!("{idx}.jpg"));
        r.index = idx;
        Ok(r)
    }

    fn classes(&self) -> &[String] {
        &[]
    }

    fn gt_labels(&self) -> Vec<usize> {
        Vec::new()
    }
}

#[test]
fn several_devices_pad_the_epoch_as_mmcvs_distributed_sampler() {
    let ds: Arc<dyn Dataset> = Arc::new(Plain(41));
    let one = DataLoader::new(Arc::clone(&ds), 16, true, 5, 0, false).unwrap();
    let two = one.clone().with_devices(2);
    // one device: 16, 16, 9, the plain shuffled order
    assert_eq!(one.epoch_len(), 3);
    let lens = |l: &DataLoader| indices(l, 1, 0).iter().map(Vec::len).collect::<Vec<_>>();
    assert_eq!(lens(&one), [16, 16, 9]);
    assert_eq!(indices(&one, 1, 0).concat(), one.order(1));
    // two: padded to 42 with the order's first sample, 21 per device: batches of 16, then
    // of 5 on each device (2 iterations; before padding, 1 whole iteration and 25 left out)
    assert_eq!(two.epoch_len(), 4);
    assert_eq!(lens(&two), [16, 16, 5, 5]);
    let order = two.order(1);
    assert_eq!(order.len(), 42);
    assert_eq!(order[..41], one.order(1)[..]);
    assert_eq!(order[41], order[0]);
    assert_eq!(indices(&two, 1, 0).concat(), order);
    // device 1's batches alone, as a process of a distributed run loads them
    let device_1: Vec<Vec<usize>> = two
        .iter_epoch_strided(1, 1, 2)
        .map(|b| b.unwrap().iter().map(|r| r.index).collect())
        .collect();
    assert_eq!(device_1, [order[16..32].to_vec(), order[37..42].to_vec()]);
    // mmcv's per-device drop_last: 21 per device, one batch of 16 each
    let dropping = DataLoader::new(Arc::clone(&ds), 16, true, 5, 0, true).unwrap();
    assert_eq!(dropping.with_devices(2).epoch_len(), 2);
    // fewer samples than devices: repeated round and round
    let tiny = DataLoader::new(Arc::new(Plain(1)), 4, true, 5, 0, false).unwrap();
    assert_eq!(indices(&tiny.with_devices(3), 0, 0), [[0], [0], [0]]);
}

#[test]
fn several_devices_group_as_mmdets_distributed_group_sampler() {
    // 2 portrait and 5 landscape images, batches of 2 on 2 devices: each group padded to a
    // multiple of 4 by repeating its shuffled samples (4 + 8), 6 batches, 3 per device
    let order = mona_data::distributed_group_epoch_order(&FLAGS, 2, 2, 7, 0);
    assert_eq!(order.len(), 12);
    for batch in order.chunks(2) {
        assert_eq!(FLAGS[batch[0]], FLAGS[batch[1]], "{batch:?} mixes groups");
    }
    // the portrait pair twice, every landscape image once or twice (8 of 5)
    let count = |i: usize| order.iter().filter(|&&j| j == i).count();
    assert_eq!((count(0), count(3)), (2, 2));
    let landscape: Vec<usize> = (0..7).filter(|&i| FLAGS[i] == 1).map(count).collect();
    assert!(landscape.iter().all(|&c| c == 1 || c == 2), "{landscape:?}");
    assert_eq!(landscape.iter().sum::<usize>(), 8);
    let ds: Arc<dyn Dataset> = Arc::new(Flagged {
        flags: FLAGS.to_vec(),
        report: None,
    });
    let loader = DataLoader::new(ds, 2, true, 7, 0, false)
        .unwrap()
        .with_devices(2);
    assert_eq!(loader.epoch_len(), 6);
    assert_eq!(indices(&loader, 0, 0).concat(), order);
    // the order depends on the seed and epoch only
    let again = mona_data::distributed_group_epoch_order(&FLAGS, 2, 2, 7, 0);
    assert_eq!(again, order);
    assert_ne!(
        mona_data::distributed_group_epoch_order(&FLAGS, 2, 2, 7, 1),
        order
    );
}
