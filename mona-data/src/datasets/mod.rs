//! Datasets: where samples come from, built by name from `data.{train,val,test}`.
//!
//! A dataset knows its samples (file, label) and its pipeline; [`Dataset::load`] creates the
//! sample's [`Results`] and runs the pipeline on it, which reads the image
//! (`LoadImageFromFile`), exactly like mmcv's `__getitem__`.
//!
//! **Paths.** `data_prefix`, `ann_file` and a `classes` file are used as written: a relative
//! path is relative to the current working directory of the process, not to the config file
//! (mmcv behaviour; the official configs say `data/oxford_flower` and expect to be run from the
//! repository root). Image paths are `data_prefix` joined with the annotation's path; an
//! absolute annotation path replaces the prefix.

mod ann_file;
mod class_check;
mod classes;
mod custom;
mod image_folder;
mod wrappers;

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;

use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;

pub use ann_file::{Sample, parse_ann_text, read_ann_file};
pub use class_check::{ClassRule, check_head_classes};
pub use classes::{flower_classes, pet_classes, read_class_file, voc_classes};
pub use custom::{ClassesArg, CustomDataset};
pub use image_folder::{IMAGE_EXTENSIONS, scan_image_folder};
pub use wrappers::{ConcatDataset, RepeatDataset};

/// A source of samples.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `idx` after the pipeline; random transforms draw from `rng`.
    fn load(&self, idx: usize, rng: &mut DataRng) -> Result<Results, DataError>;

    /// Class names, index = label. Empty when the config gives none and the dataset has no
    /// preset (an annotation-file `CustomDataset` without `classes`).
    fn classes(&self) -> &[String];

    /// The label of every sample, in index order (for evaluation).
    fn gt_labels(&self) -> Vec<usize>;

    /// mmdet's aspect-ratio group of every sample, in index order (`_set_group_flag`: 1 where
    /// the annotated width / height > 1, else 0). When given, the shuffling loader forms every
    /// batch from one group (mmdet's `GroupSampler`, see [`crate::loader`]), so images padded
    /// to a common batch size waste little. `None` (the default): no grouping, as mmcls and
    /// mmseg datasets, which have no `flag`.
    fn group_flags(&self) -> Option<Vec<u8>> {
        None
    }
}

mona_core::declare_registry! {
    /// Datasets, selected by `data.{train,val,test}.type`.
    pub struct DatasetEntry: "dataset" =>
        fn(&ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError>;
}

/// Builds the dataset described by `node` (e.g. `data.train`).
pub fn build_dataset(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    let entry = mona_core::registry::lookup::<DatasetEntry>(node)?;
    (entry.build)(node)
}
