//! `mona-data`: everything between files on disk and batches of numbers.
//!
//! - [`results`]: [`Results`], mmcv's per-sample `results` dict as a struct.
//! - [`decode`]: image decoding with mmcv's `color` semantics.
//! - [`ops`]: resizing with OpenCV's / Pillow's exact arithmetic, crops, flips.
//! - [`transforms`]: the registered pipeline steps (`LoadImageFromFile`, `RandomResizedCrop`,
//!   `RandomFlip`, `Resize`, `CenterCrop`, `Normalize`, formatting) and [`build_pipeline`].
//! - [`datasets`]: the [`Dataset`] trait, its registry and the mmcls readers
//!   (`CustomDataset`, `OxfordFlowerMona`, `OxfordPetMona`, `VOCMona`).
//! - [`masks`]: instance-mask annotations (polygons, RLE) and their rasterisation.
//! - [`loader`]: [`DataLoader`], deterministic whatever the number of worker threads, with
//!   mmdet's aspect-ratio `GroupSampler` for datasets that give group flags.
//! - [`batch`]: stacking normalised images and labels for a classifier.
//! - [`rng`]: the augmentation generator and its seeding rules.
//!
//! Registries declared here (kinds "transform" and "dataset") are filled by this crate and by
//! any crate that submits entries; see `mona_core::registry`.

// Builders must return `mona_core::registry::BuildError` (the registry signature), which is
// large because its `Unknown` variant carries the lists that make the message useful. Boxing it
// is the core's call; until then this lint would flag every builder.
#![allow(clippy::result_large_err)]

pub mod batch;
pub mod datasets;
pub mod decode;
pub mod draw;
pub mod error;
pub mod loader;
pub mod masks;
pub mod ops;
pub mod results;
pub mod rng;
pub mod transforms;

pub use batch::{stack_images, stack_labels};
pub use datasets::{CustomDataset, Dataset, DatasetEntry, build_dataset, read_ann_file};
pub use decode::read_image;
pub use error::DataError;
pub use loader::{
    DataLoader, EpochIter, distributed_group_epoch_order, epoch_order, group_epoch_order,
};
pub use masks::{MaskAnnotation, MaskAnnotations};
pub use results::{FlipDirection, Image, Results};
pub use rng::{DataRng, sample_rng};
pub use transforms::{Pipeline, Transform, TransformEntry, build_pipeline, build_transform};

/// Call from binaries so the linker keeps this crate's registrations (an unreferenced crate
/// is dropped with its `inventory` entries).
#[inline(never)]
pub fn link() {
    std::hint::black_box(loader::epoch_order as fn(usize, bool, u64, u64) -> Vec<usize>);
}
