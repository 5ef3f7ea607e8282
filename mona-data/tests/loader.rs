//! Loader determinism: orders and augmented pixels depend on (seed, epoch, position) only.

mod common;

use std::sync::Arc;

use common::{config, write_png};
use mona_data::datasets::{CustomDataset, Dataset};
use mona_data::rng::DataRng;
use mona_data::{DataError, DataLoader, Results, build_pipeline, stack_images, stack_labels};

const TRAIN: &str = r#"p = [
    { type = "LoadImageFromFile" },
    { type = "RandomResizedCrop", size = 8 },
    { type = "RandomFlip", flip_prob = 0.5, direction = "horizontal" },
    { type = "Normalize", mean = [123.675, 116.28, 103.53], std = [58.395, 57.12, 57.375], to_rgb = true },
    { type = "ImageToTensor", keys = ["img"] },
    { type = "ToTensor", keys = ["gt_label"] },
    { type = "Collect", keys = ["img", "gt_label"] },
]"#;

fn dataset(dir: &std::path::Path, n: usize) -> Arc<dyn Dataset> {
    let mut ann = String::new();
    for i in 0..n {
        let (w, h) = (20 + i as u32, 16 + (i as u32 % 3));
        write_png(dir, &format!("img/{i}.png"), w, h, move |x, y| {
            [
                (x * 13 + i as u32) as u8,
                (y * 17) as u8,
                (x * y + 3 * i as u32) as u8,
            ]
        });
        ann.push_str(&format!("img/{i}.png {}\n", i % 4));
    }
    let ann_path = dir.join("ann.txt");
    std::fs::write(&ann_path, ann).unwrap();
    let cfg = config(TRAIN);
    let pipeline = build_pipeline(&cfg.node("p").unwrap()).unwrap();
    Arc::new(CustomDataset::from_ann_file(dir, &ann_path, None, pipeline).unwrap())
}

/// Each batch as (sample indices, stacked pixels).
fn epoch(loader: &DataLoader, e: u64, start: usize) -> Vec<(Vec<usize>, Vec<f32>)> {
    loader
        .iter_epoch(e, start)
        .map(|b| {
            let b = b.unwrap();
            let (pixels, shape) = stack_images(&b).unwrap();
            assert_eq!(&shape[1..], &[3, 8, 8]);
            (b.iter().map(|r| r.index).collect(), pixels)
        })
        .collect()
}

#[test]
fn same_seed_same_batches_whatever_the_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 11);
    let make = |workers| DataLoader::new(Arc::clone(&ds), 3, true, 1234, workers, false).unwrap();
    let serial = epoch(&make(0), 2, 0);
    assert_eq!(serial.len(), 4);
    assert_eq!(
        serial.last().unwrap().0.len(),
        2,
        "last batch is smaller without drop_last"
    );
    for workers in [1, 2, 3, 8] {
        assert_eq!(
            epoch(&make(workers), 2, 0),
            serial,
            "num_workers = {workers}"
        );
    }
    // All samples exactly once.
    let mut seen: Vec<usize> = serial.iter().flat_map(|b| b.0.clone()).collect();
    seen.sort();
    assert_eq!(seen, (0..11).collect::<Vec<_>>());
}

#[test]
fn epochs_differ_and_seeds_differ() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 12);
    let loader = DataLoader::new(Arc::clone(&ds), 4, true, 5, 2, false).unwrap();
    let order = |l: &DataLoader, e| {
        epoch(l, e, 0)
            .into_iter()
            .flat_map(|b| b.0)
            .collect::<Vec<_>>()
    };
    assert_ne!(order(&loader, 0), order(&loader, 1));
    assert_eq!(order(&loader, 1), order(&loader, 1));
    let other = DataLoader::new(Arc::clone(&ds), 4, true, 6, 0, false).unwrap();
    assert_ne!(order(&loader, 0), order(&other, 0));
    // Same order but different augmentation is impossible to tell apart from the order alone:
    // check pixels too.
    assert_ne!(epoch(&loader, 0, 0), epoch(&other, 0, 0));
    let unshuffled = DataLoader::new(ds, 4, false, 5, 2, false).unwrap();
    assert_eq!(order(&unshuffled, 3), (0..12).collect::<Vec<_>>());
}

#[test]
fn resuming_mid_epoch_equals_skipping() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 10);
    for workers in [0, 2] {
        let loader = DataLoader::new(Arc::clone(&ds), 3, true, 77, workers, false).unwrap();
        let full = epoch(&loader, 4, 0);
        for k in 0..=loader.epoch_len() {
            assert_eq!(
                epoch(&loader, 4, k),
                full[k..].to_vec(),
                "start {k}, workers {workers}"
            );
        }
        assert_eq!(loader.iter_epoch(4, 99).count(), 0);
        assert_eq!(loader.iter_epoch(4, 1).len(), 3);
    }
}

/// A distributed run's rank `r` of `w` loads batches `first + r`, `first + r + w`, ...: each
/// is the batch the whole epoch has at that index, whatever the worker count, and the ranks
/// together load every batch once.
#[test]
fn strided_batches_are_the_epochs_batches_at_those_indices() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 23);
    for workers in [0, 1, 2, 3] {
        let loader = DataLoader::new(Arc::clone(&ds), 2, true, 9, workers, false).unwrap();
        let full = epoch(&loader, 1, 0);
        assert_eq!(full.len(), 12);
        for stride in [1, 2, 3, 5] {
            for first in [0, 1, 4, 11, 12, 40] {
                let strided: Vec<_> = loader
                    .iter_epoch_strided(1, first, stride)
                    .map(|b| {
                        let b = b.unwrap();
                        let (pixels, _) = stack_images(&b).unwrap();
                        (b.iter().map(|r| r.index).collect::<Vec<_>>(), pixels)
                    })
                    .collect();
                let expected: Vec<_> = (first..full.len())
                    .step_by(stride)
                    .map(|i| full[i].clone())
                    .collect();
                let it = loader.iter_epoch_strided(1, first, stride);
                assert_eq!(it.len(), expected.len(), "size hint");
                assert_eq!(
                    strided, expected,
                    "workers {workers}, stride {stride}, first {first}"
                );
            }
        }
    }
}

#[test]
fn drop_last_and_epoch_len() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 7);
    let keep = DataLoader::new(Arc::clone(&ds), 3, false, 0, 0, false).unwrap();
    let drop = DataLoader::new(Arc::clone(&ds), 3, false, 0, 2, true).unwrap();
    assert_eq!((keep.epoch_len(), drop.epoch_len()), (3, 2));
    let sizes: Vec<usize> = drop.iter_epoch(0, 0).map(|b| b.unwrap().len()).collect();
    assert_eq!(sizes, vec![3, 3]);
    assert!(DataLoader::new(ds, 0, false, 0, 0, false).is_err());
}

#[test]
fn dropping_an_iterator_early_stops_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 12);
    let loader = DataLoader::new(ds, 1, true, 0, 3, false).unwrap();
    let mut it = loader.iter_epoch(0, 0);
    assert!(it.next().unwrap().is_ok());
    drop(it); // must not hang
}

#[test]
fn labels_and_batch_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ds = dataset(dir.path(), 4);
    let loader = DataLoader::new(ds, 4, false, 0, 0, false).unwrap();
    let batch = loader.iter_epoch(0, 0).next().unwrap().unwrap();
    assert_eq!(stack_labels(&batch).unwrap(), vec![0, 1, 2, 3]);
    let mut unlabelled = batch.clone();
    unlabelled[2].gt_label = None;
    let err = stack_labels(&unlabelled).unwrap_err().to_string();
    assert!(err.contains("img/2.png"), "{err}");

    let mut mixed = batch.clone();
    if let mona_data::Image::F32 { data, width, .. } = &mut mixed[1].img {
        *width = 4;
        data.truncate(3 * 8 * 4);
    }
    let err = stack_images(&mixed).unwrap_err().to_string();
    assert!(err.contains("img/1.png") && err.contains("3x8x4"), "{err}");

    let mut raw = batch;
    raw[3].img = mona_data::Image::U8(image::RgbImage::new(8, 8));
    let err = stack_images(&raw).unwrap_err().to_string();
    assert!(
        err.contains("img/3.png") && err.contains("Normalize"),
        "{err}"
    );
    assert!(matches!(stack_images(&[]), Err(DataError::EmptyBatch)));
}

/// A dataset that panics on one index: the loader must report it, not hang or abort.
struct Panicky;

impl Dataset for Panicky {
    fn len(&self) -> usize {
        6
    }
    fn load(&self, idx: usize, _rng: &mut DataRng) -> Result<Results, DataError> {
        if idx == 4 {
            panic!("boom at {idx}");
        }
        Ok(Results::new(format!("{idx}.png")))
    }
    fn classes(&self) -> &[String] {
        &[]
    }
    fn gt_labels(&self) -> Vec<usize> {
        vec![0; 6]
    }
}

#[test]
fn a_panicking_sample_becomes_an_error_of_its_batch() {
    let loader = DataLoader::new(Arc::new(Panicky), 2, false, 0, 2, false).unwrap();
    let results: Vec<_> = loader.iter_epoch(0, 0).collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok() && results[1].is_ok());
    let err = results[2].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("boom at 4") && err.contains("batch 2"),
        "{err}"
    );
}
