//! Detection datasets in the dataset registry: `VOCDataset` (mmdet `XMLDataset`: an id list
//! per `ann_file`, `img_prefix/Annotations/ID.xml`, `img_prefix/JPEGImages/ID.jpg`) and
//! `CocoDataset` (`instances_*.json`, images under `img_prefix`). The readers are those of
//! [`crate::datasets`]; this module adds the pipeline, the training filter and what the
//! evaluation needs (annotations, image ids, category ids, the VOC year).
//!
//! **Lists.** `ann_file` / `img_prefix` may be lists of equal length (mmdet concatenates one
//! dataset per pair, as VOC 07+12 trainval does); the parts are read one after another.
//!
//! **Filtering** (mmdet `_filter_imgs`, training only, i.e. unless `test_mode = true`):
//! images whose short side is below 32 px are dropped, and with `filter_empty_gt` (default
//! true) images without any box of the dataset's classes (difficult / crowd boxes count, as in
//! mmdet). For COCO mmdet tests "has any annotation of the selected categories" on the raw
//! file; here the test is on the parsed boxes (an image whose only boxes are degenerate is
//! dropped too).
//!
//! **Masks.** COCO samples carry the raw `segmentation` of each kept box (mmdet's
//! `ann_info['masks']`; crowd boxes have none, as in mmdet); [`DetDataset::load`] hands them to
//! the pipeline in `Results::gt_mask_anns`, where `LoadAnnotations(with_mask = true)`
//! rasterises them. VOC has no masks (`with_mask` then fails, naming the image).
//!
//! **Groups.** [`Dataset::group_flags`] is mmdet's `_set_group_flag` (1 where the annotated
//! width / height > 1), so the shuffling training loader batches like mmdet's `GroupSampler`.
//!
//! The task builds its evaluation sets with `test_mode` forced on; a registry build reads the
//! node's `test_mode` (default false, mmdet's default).

use std::path::{Path, PathBuf};

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use mona_data::datasets::ClassesArg;
use mona_data::error::DataError;
use mona_data::masks::{MaskAnnotation, MaskAnnotations};
use mona_data::transforms::build_plain_pipeline;
use mona_data::{DataRng, Dataset, DatasetEntry, Pipeline, Results};
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::datasets::{DetAnnotation, VocImage, read_coco_json, read_voc_split, voc_classes};
use crate::ops::boxes::Box4;

/// mmdet's `min_size` of `_filter_imgs`.
pub const MIN_SIZE: usize = 32;

/// One image with its annotation.
#[derive(Debug, Clone)]
pub struct DetSample {
    pub filename: PathBuf,
    /// The VOC id or the COCO `file_name` (outputs are named after it).
    pub name: String,
    /// The COCO image id (VOC: the position in the dataset, from 1).
    pub image_id: u64,
    pub ann: DetAnnotation,
    /// COCO: the `segmentation` of each `ann.bboxes` entry (`None` where the annotation has
    /// none); VOC: `None` (no masks).
    pub masks: Option<Vec<Option<MaskAnnotation>>>,
}

/// Which annotation format a dataset was read from.
#[derive(Debug, Clone, PartialEq)]
pub enum DetFormat {
    /// VOC; `year_2007` selects the VOC07 11-point AP (mmdet infers it from `img_prefix`).
    Voc { year_2007: bool },
    /// COCO, with the annotation file (the ground truth of the COCO evaluation).
    Coco { ann_file: PathBuf },
}

/// A detection dataset.
pub struct DetDataset {
    samples: Vec<DetSample>,
    classes: Vec<String>,
    /// COCO category id of each label (VOC: label + 1).
    cat_ids: Vec<u64>,
    format: DetFormat,
    pipeline: Pipeline,
}

impl DetDataset {
    pub fn samples(&self) -> &[DetSample] {
        &self.samples
    }

    pub fn cat_ids(&self) -> &[u64] {
        &self.cat_ids
    }

    pub fn format(&self) -> &DetFormat {
        &self.format
    }

    /// Sample `idx` through `pipeline` instead of the dataset's own: a test-time
    /// augmentation view.
    pub fn load_with(
        &self,
        idx: usize,
        pipeline: &Pipeline,
        rng: &mut DataRng,
    ) -> Result<Results, DataError> {
        let s = self.samples.get(idx).ok_or(DataError::IndexOutOfRange {
            index: idx,
            len: self.samples.len(),
        })?;
        let mut r = Results::new(&s.filename);
        r.ori_filename = s.name.clone();
        r.index = idx;
        r.gt_bboxes = s.ann.bboxes.clone();
        r.gt_labels = s.ann.labels.clone();
        r.gt_bboxes_ignore = s.ann.bboxes_ignore.clone();
        r.gt_mask_anns = s.masks.as_ref().map(|m| MaskAnnotations {
            height: s.ann.height,
            width: s.ann.width,
            instances: m.clone(),
        });
        pipeline.apply(r, rng)
    }
}

impl Dataset for DetDataset {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn load(&self, idx: usize, rng: &mut DataRng) -> Result<Results, DataError> {
        self.load_with(idx, &self.pipeline, rng)
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Detection samples have no single label.
    fn gt_labels(&self) -> Vec<usize> {
        Vec::new()
    }

    /// mmdet `CustomDataset._set_group_flag`: `flag = 1 if width / height > 1 else 0`, from
    /// the annotation's size.
    fn group_flags(&self) -> Option<Vec<u8>> {
        Some(
            self.samples
                .iter()
                .map(|s| u8::from(s.ann.width as f64 / s.ann.height as f64 > 1.0))
                .collect(),
        )
    }
}

/// One path or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
enum PathList {
    One(String),
    Many(Vec<String>),
}

impl PathList {
    fn paths(self) -> Vec<String> {
        match self {
            PathList::One(p) => vec![p],
            PathList::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    ann_file: PathList,
    #[serde(default)]
    img_prefix: Option<PathList>,
    #[serde(default)]
    data_root: Option<String>,
    #[serde(rename = "pipeline")]
    _pipeline: IgnoredAny,
    #[serde(default)]
    classes: Option<ClassesArg>,
    #[serde(default)]
    test_mode: Option<bool>,
    #[serde(default)]
    filter_empty_gt: Option<bool>,
    /// mmdet's proposal / segmentation inputs are not used by RetinaNet.
    #[serde(default, rename = "proposal_file")]
    _proposal_file: Option<IgnoredAny>,
    #[serde(default, rename = "seg_prefix")]
    _seg_prefix: Option<IgnoredAny>,
}

/// mmdet: a relative path is joined to `data_root` when one is given.
fn rooted(root: Option<&str>, p: &str) -> PathBuf {
    match root {
        Some(r) if !Path::new(p).is_absolute() => Path::new(r).join(p),
        _ => PathBuf::from(p),
    }
}

/// Training refuses VOC boxes with `xmax <= xmin` or `ymax <= ymin`. mmdet's `XMLDataset`
/// keeps them as written (and so do evaluation sets here), but in training the box coder
/// takes the log of their zero or negative width, and the first batch holding one turns the
/// loss into NaN far from its cause. The error names the XML file, the class and the box.
fn check_voc_boxes(img: &VocImage, classes: &[String]) -> Result<(), EmptyVocBox> {
    for (b, &label) in img.ann.bboxes.iter().zip(&img.ann.labels) {
        let axis = if b[2] <= b[0] {
            Some(("xmax", b[2], "xmin", b[0]))
        } else if b[3] <= b[1] {
            Some(("ymax", b[3], "ymin", b[1]))
        } else {
            None
        };
        if let Some((hi, hv, lo, lv)) = axis {
            return Err(EmptyVocBox {
                xml: img.xml.clone(),
                class: classes[label].clone(),
                bbox: *b,
                axis: (hi, hv, lo, lv),
            });
        }
    }
    Ok(())
}

/// A VOC training box with `xmax <= xmin` or `ymax <= ymin`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{}: the `{class}` box [{}, {}, {}, {}] has {} {} <= {} {}: an empty or inverted box makes the training loss NaN; fix or remove the object (or mark it difficult)",
    xml.display(), bbox[0], bbox[1], bbox[2], bbox[3], axis.0, axis.1, axis.2, axis.3
)]
pub struct EmptyVocBox {
    pub xml: PathBuf,
    pub class: String,
    pub bbox: Box4,
    /// The upper side's name and value, then the lower side's.
    pub axis: (&'static str, f32, &'static str, f32),
}

/// Builds a detection dataset; `force_test_mode` skips the training filter whatever the node
/// says (evaluation sets).
pub type DetDatasetBuilder = fn(&ConfigNode<'_>, bool) -> Result<DetDataset, BuildError>;

mona_core::declare_registry! {
    /// Detection datasets as the evaluation needs them (annotations, categories, the result
    /// format), selected by `data.{val,test}.type` and, through the dataset registry, by
    /// `data.train.type`. A plugin adds an annotation format by producing a [`DetDataset`].
    pub struct DetDatasetEntry: "detection dataset" => DetDatasetBuilder;
}

/// The detection dataset of a `data.*` node by its registered `type`; an unknown type names
/// the file, the key and the nearest registered datasets.
pub fn build_det_dataset(
    node: &ConfigNode<'_>,
    force_test_mode: bool,
) -> Result<DetDataset, BuildError> {
    let entry = mona_core::registry::lookup::<DetDatasetEntry>(node)?;
    (entry.build)(node, force_test_mode)
}

/// `VOCDataset` and `CocoDataset`, which share everything but the annotation reading.
fn build_voc_or_coco(
    node: &ConfigNode<'_>,
    force_test_mode: bool,
) -> Result<DetDataset, BuildError> {
    let kind = node.type_name()?;
    let args: Args = node.extract()?;
    let root = args.data_root.as_deref();
    let ann_files: Vec<PathBuf> = args
        .ann_file
        .paths()
        .iter()
        .map(|p| rooted(root, p))
        .collect();
    let prefixes: Vec<PathBuf> = match args.img_prefix {
        Some(l) => l.paths().iter().map(|p| rooted(root, p)).collect(),
        None => vec![PathBuf::new(); ann_files.len()],
    };
    if prefixes.len() != ann_files.len() {
        return Err(BuildError::invalid(
            node,
            Some("img_prefix"),
            format!(
                "{} prefixes for {} ann_files (they pair up)",
                prefixes.len(),
                ann_files.len()
            ),
        ));
    }
    let invalid = |key: &str, e: String| BuildError::invalid(node, Some(key), e);
    let classes_given = match args.classes {
        Some(ClassesArg::Names(n)) => Some(n),
        Some(ClassesArg::File(f)) => Some(
            mona_data::datasets::read_class_file(&rooted(root, &f))
                .map_err(|e| invalid("classes", e.to_string()))?,
        ),
        None => None,
    };
    let test_mode = force_test_mode || args.test_mode.unwrap_or(false);
    let mut samples = Vec::new();
    let (classes, cat_ids, format) = match kind {
        "VOCDataset" => {
            let classes = classes_given.unwrap_or_else(voc_classes);
            for (ann, prefix) in ann_files.iter().zip(&prefixes) {
                for img in read_voc_split(ann, prefix, &classes)
                    .map_err(|e| invalid("ann_file", e.to_string()))?
                {
                    if !test_mode {
                        check_voc_boxes(&img, &classes)
                            .map_err(|e| invalid("ann_file", e.to_string()))?;
                    }
                    samples.push(DetSample {
                        filename: img.filename,
                        name: img.id,
                        image_id: samples.len() as u64 + 1,
                        ann: img.ann,
                        masks: None,
                    });
                }
            }
            // mmdet VOCDataset: the year comes from `img_prefix` (VOC2007 -> 11-point AP).
            let year_2007 = prefixes
                .first()
                .is_some_and(|p| p.to_string_lossy().contains("VOC2007"));
            let cat_ids = (1..=classes.len() as u64).collect();
            (classes, cat_ids, DetFormat::Voc { year_2007 })
        }
        "CocoDataset" => {
            if ann_files.len() != 1 {
                return Err(invalid(
                    "ann_file",
                    "CocoDataset takes one annotation file".into(),
                ));
            }
            let coco =
                read_coco_json(&ann_files[0]).map_err(|e| invalid("ann_file", e.to_string()))?;
            let all: Vec<String> = coco.categories.iter().map(|c| c.name.clone()).collect();
            // mmdet: `classes` selects categories by name; labels follow that order.
            let classes = classes_given.unwrap_or_else(|| all.clone());
            let mut remap = vec![None; all.len()];
            let mut cat_ids = Vec::with_capacity(classes.len());
            for (label, name) in classes.iter().enumerate() {
                let Some(k) = all.iter().position(|c| c == name) else {
                    return Err(invalid(
                        "classes",
                        format!("\"{name}\" is not a category of {}", ann_files[0].display()),
                    ));
                };
                remap[k] = Some(label);
                cat_ids.push(coco.categories[k].id);
            }
            let keep = |labels: &[usize], boxes: &[[f32; 4]]| -> (Vec<[f32; 4]>, Vec<usize>) {
                labels
                    .iter()
                    .zip(boxes)
                    .filter_map(|(&l, b)| remap[l].map(|nl| (*b, nl)))
                    .unzip()
            };
            for ((im, ann), masks) in coco.images.iter().zip(coco.annotations).zip(coco.masks) {
                let (bboxes, labels) = keep(&ann.labels, &ann.bboxes);
                // The masks follow their boxes through the class selection.
                let masks: Vec<Option<MaskAnnotation>> = ann
                    .labels
                    .iter()
                    .zip(masks)
                    .filter(|(l, _)| remap[**l].is_some())
                    .map(|(_, m)| m)
                    .collect();
                let (bboxes_ignore, labels_ignore) = keep(&ann.labels_ignore, &ann.bboxes_ignore);
                samples.push(DetSample {
                    filename: prefixes[0].join(&im.file_name),
                    name: im.file_name.clone(),
                    image_id: im.id,
                    ann: DetAnnotation {
                        width: ann.width,
                        height: ann.height,
                        bboxes,
                        labels,
                        bboxes_ignore,
                        labels_ignore,
                    },
                    masks: Some(masks),
                });
            }
            (
                classes,
                cat_ids,
                DetFormat::Coco {
                    ann_file: ann_files[0].clone(),
                },
            )
        }
        other => {
            return Err(BuildError::invalid(
                node,
                Some("type"),
                format!("{other}: detection datasets are VOCDataset and CocoDataset"),
            ));
        }
    };
    if !test_mode {
        let filter_empty = args.filter_empty_gt.unwrap_or(true);
        samples.retain(|s| {
            s.ann.width.min(s.ann.height) >= MIN_SIZE
                && (!filter_empty || !s.ann.bboxes.is_empty() || !s.ann.bboxes_ignore.is_empty())
        });
    }
    if samples.is_empty() {
        return Err(invalid(
            "ann_file",
            "no images left (after filtering images without boxes or smaller than 32 px)".into(),
        ));
    }
    let pipeline = build_plain_pipeline(&node.child("pipeline")?)?;
    Ok(DetDataset {
        samples,
        classes,
        cat_ids,
        format,
        pipeline,
    })
}

fn build_boxed(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    build_det_dataset(node, false).map(|d| Box::new(d) as Box<dyn Dataset>)
}

inventory::submit! { DetDatasetEntry::new("VOCDataset", build_voc_or_coco) }
inventory::submit! { DetDatasetEntry::new("CocoDataset", build_voc_or_coco) }
inventory::submit! { DatasetEntry::new("VOCDataset", build_boxed) }
inventory::submit! { DatasetEntry::new("CocoDataset", build_boxed) }
