//! `CustomDataset` (mmcls 0.x) and the Mona presets `OxfordFlowerMona`, `OxfordPetMona`,
//! `VOCMona`, which are the same reader with a preset class list.
//!
//! Config keys: `data_prefix` (image root, required), `ann_file` (annotation list; without it
//! the image-folder layout is scanned), `classes` (a list of names or the path of a class
//! file; overrides the preset), `pipeline` (required), `test_mode` (accepted, no effect).

use std::path::{Path, PathBuf};

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::ann_file::{Sample, read_ann_file};
use super::classes::{flower_classes, pet_classes, read_class_file, voc_classes};
use super::image_folder::scan_image_folder;
use super::{Dataset, DatasetEntry};
use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;
use crate::transforms::{Pipeline, build_pipeline};

/// Images listed by an annotation file or found in class folders, with one label each.
#[derive(Debug)]
pub struct CustomDataset {
    data_prefix: PathBuf,
    classes: Vec<String>,
    samples: Vec<Sample>,
    pipeline: Pipeline,
}

impl CustomDataset {
    /// Samples from the annotation file `ann_file`, images under `data_prefix`. Labels must be
    /// below `classes.len()` when `classes` is given.
    pub fn from_ann_file(
        data_prefix: impl Into<PathBuf>,
        ann_file: &Path,
        classes: Option<Vec<String>>,
        pipeline: Pipeline,
    ) -> Result<Self, DataError> {
        let samples = read_ann_file(ann_file, classes.as_ref().map(Vec::len))?;
        Ok(CustomDataset {
            data_prefix: data_prefix.into(),
            classes: classes.unwrap_or_default(),
            samples,
            pipeline,
        })
    }

    /// Samples from the class folders under `data_prefix`. Classes are the folder names unless
    /// `classes` is given (then it must name at least as many classes as there are folders).
    pub fn from_folder(
        data_prefix: impl Into<PathBuf>,
        classes: Option<Vec<String>>,
        pipeline: Pipeline,
    ) -> Result<Self, DataError> {
        let data_prefix = data_prefix.into();
        let (folders, samples) = scan_image_folder(&data_prefix)?;
        let classes = match classes {
            Some(given) if given.len() < folders.len() => {
                return Err(DataError::Empty {
                    path: data_prefix,
                    message: format!(
                        "has {} class folders but only {} classes are configured",
                        folders.len(),
                        given.len()
                    ),
                });
            }
            Some(given) => given,
            None => folders,
        };
        Ok(CustomDataset {
            data_prefix,
            classes,
            samples,
            pipeline,
        })
    }

    /// The samples, in index order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    pub fn data_prefix(&self) -> &Path {
        &self.data_prefix
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Sample `idx` before the pipeline: path, file name, label, index.
    pub fn raw(&self, idx: usize) -> Result<Results, DataError> {
        let sample = self.samples.get(idx).ok_or(DataError::IndexOutOfRange {
            index: idx,
            len: self.samples.len(),
        })?;
        let mut r = Results::new(self.data_prefix.join(&sample.filename));
        r.ori_filename = sample.filename.clone();
        r.index = idx;
        r.gt_label = Some(sample.label);
        Ok(r)
    }
}

impl Dataset for CustomDataset {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn load(&self, idx: usize, rng: &mut DataRng) -> Result<Results, DataError> {
        self.pipeline.apply(self.raw(idx)?, rng)
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn gt_labels(&self) -> Vec<usize> {
        self.samples.iter().map(|s| s.label).collect()
    }
}

/// `classes` of a dataset config: a list of names or the path of a class file (shared by the
/// classification and segmentation datasets).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum ClassesArg {
    Names(Vec<String>),
    File(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    data_prefix: String,
    ann_file: Option<String>,
    classes: Option<ClassesArg>,
    /// Built from the node itself (see `build_with_preset`).
    #[serde(rename = "pipeline")]
    _pipeline: IgnoredAny,
    #[serde(default, rename = "test_mode")]
    _test_mode: Option<bool>,
}

fn build_with_preset(
    node: &ConfigNode<'_>,
    preset: Option<Vec<String>>,
) -> Result<Box<dyn Dataset>, BuildError> {
    let args: Args = node.extract()?;
    let classes = match args.classes {
        Some(ClassesArg::Names(names)) if names.is_empty() => {
            return Err(BuildError::invalid(
                node,
                Some("classes"),
                "the class list is empty",
            ));
        }
        Some(ClassesArg::Names(names)) => Some(names),
        Some(ClassesArg::File(file)) => Some(
            read_class_file(Path::new(&file))
                .map_err(|e| BuildError::invalid(node, Some("classes"), e.to_string()))?,
        ),
        None => preset,
    };
    let pipeline = build_pipeline(&node.child("pipeline")?)?;
    let dataset = match &args.ann_file {
        Some(ann) => {
            CustomDataset::from_ann_file(&args.data_prefix, Path::new(ann), classes, pipeline)
                .map_err(|e| BuildError::invalid(node, Some("ann_file"), e.to_string()))?
        }
        None => CustomDataset::from_folder(&args.data_prefix, classes, pipeline)
            .map_err(|e| BuildError::invalid(node, Some("data_prefix"), e.to_string()))?,
    };
    Ok(Box::new(dataset))
}

fn build_custom(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    build_with_preset(node, None)
}

fn build_flower(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    build_with_preset(node, Some(flower_classes()))
}

fn build_pet(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    build_with_preset(node, Some(pet_classes()))
}

fn build_voc(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    build_with_preset(node, Some(voc_classes()))
}

inventory::submit! { DatasetEntry::new("CustomDataset", build_custom) }
inventory::submit! { DatasetEntry::new("OxfordFlowerMona", build_flower) }
inventory::submit! { DatasetEntry::new("OxfordPetMona", build_pet) }
inventory::submit! { DatasetEntry::new("VOCMona", build_voc) }
