//! Segmentation datasets: `ADE20KDataset` (ADEChallengeData2016 layout, 150 classes,
//! `reduce_zero_label` by default) and `CustomSegDataset` (a folder of images and a folder of
//! label PNGs with the same stems, plus a class list).
//!
//! Config keys (mmseg 0.x): `data_root`, `img_dir`, `ann_dir`, `img_suffix`,
//! `seg_map_suffix`, `classes` (names or a class file), `reduce_zero_label`, `pipeline`,
//! `test_mode`. The label map is read by the dataset (Results carries no annotation path)
//! when the pipeline has `LoadAnnotations`, which then checks and reduces it. A mmseg
//! `MultiScaleFlipAug` (single scale, no flip) is flattened into its transforms.

use std::path::{Path, PathBuf};

use image::GrayImage;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use mona_data::datasets::ClassesArg;
use mona_data::error::DataError;
use mona_data::transforms::reduce_zero_label;
use mona_data::{DataRng, Dataset, DatasetEntry, Pipeline, Results};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// One image and its label map.
#[derive(Debug, Clone)]
pub struct SegSample {
    pub img: PathBuf,
    pub ann: Option<PathBuf>,
    pub name: String,
}

/// A folder-of-images + folder-of-label-PNGs dataset.
pub struct SegDataset {
    samples: Vec<SegSample>,
    classes: Vec<String>,
    /// Applied to labels read for evaluation (`gt`) and checked when loading.
    reduce_zero_label: bool,
    pipeline: Pipeline,
    loads_annotations: bool,
}

impl SegDataset {
    /// Scans `img_dir` for `*img_suffix` files; each has `ann_dir/<stem><seg_map_suffix>`.
    pub fn scan(
        img_dir: &Path,
        ann_dir: Option<&Path>,
        img_suffix: &str,
        seg_map_suffix: &str,
        classes: Vec<String>,
        reduce_zero_label: bool,
        pipeline: Pipeline,
    ) -> Result<Self, DataError> {
        let io = |path: &Path, source| DataError::Io {
            what: "image folder",
            path: path.to_path_buf(),
            source,
        };
        if let Some(ann) = ann_dir
            && !ann.is_dir()
        {
            return Err(DataError::Io {
                what: "annotation folder",
                path: ann.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such folder"),
            });
        }
        let mut names = Vec::new();
        collect(img_dir, img_dir, img_suffix, &mut names).map_err(|e| io(img_dir, e))?;
        names.sort();
        if names.is_empty() {
            return Err(DataError::Empty {
                path: img_dir.to_path_buf(),
                message: format!("has no images ending in {img_suffix}"),
            });
        }
        let samples = names
            .into_iter()
            .map(|rel| {
                let stem = rel.strip_suffix(img_suffix).unwrap_or(&rel).to_string();
                SegSample {
                    img: img_dir.join(&rel),
                    ann: ann_dir.map(|a| a.join(format!("{stem}{seg_map_suffix}"))),
                    name: stem,
                }
            })
            .collect();
        let loads_annotations = pipeline.names().contains(&"LoadAnnotations");
        Ok(Self {
            samples,
            classes,
            reduce_zero_label,
            pipeline,
            loads_annotations,
        })
    }

    pub fn samples(&self) -> &[SegSample] {
        &self.samples
    }

    /// Sample `idx` through `pipeline` instead of the dataset's own (a test-time
    /// augmentation view).
    pub fn load_with(
        &self,
        idx: usize,
        pipeline: &Pipeline,
        rng: &mut DataRng,
    ) -> Result<Results, DataError> {
        let s = self.sample(idx)?;
        let mut r = Results::new(&s.img);
        r.ori_filename = s.name.clone();
        r.index = idx;
        if self.loads_annotations {
            r.gt_seg = Some(self.raw_label(idx)?);
        }
        pipeline.apply(r, rng)
    }

    /// The raw label map of sample `idx`, checked: 8-bit grayscale, values below the class
    /// count (after `reduce_zero_label` when set) or 255.
    pub fn raw_label(&self, idx: usize) -> Result<GrayImage, DataError> {
        let s = self.sample(idx)?;
        let path = s.ann.as_ref().ok_or_else(|| DataError::Empty {
            path: s.img.clone(),
            message: "the dataset has no ann_dir, so this image has no label map".into(),
        })?;
        let bytes = std::fs::read(path).map_err(|source| DataError::ImageRead {
            path: path.clone(),
            source,
        })?;
        let gray = crate::label_map::decode_label_map(&bytes, path)?;
        let k = self.classes.len();
        for p in gray.pixels() {
            let raw = p.0[0];
            let v = if self.reduce_zero_label {
                reduce_zero_label(raw)
            } else {
                raw
            };
            if v != 255 && (v as usize) >= k {
                return Err(DataError::Transform {
                    path: path.clone(),
                    transform: "LoadAnnotations",
                    message: format!(
                        "label value {raw} is out of range: the dataset has {k} classes{} \
                         (255 = ignore)",
                        if self.reduce_zero_label {
                            " after reduce_zero_label (raw values 0..=classes)"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
        Ok(gray)
    }

    /// The evaluation label map of `idx` (reduced when `reduce_zero_label`), original size.
    pub fn gt(&self, idx: usize) -> Result<GrayImage, DataError> {
        let mut g = self.raw_label(idx)?;
        if self.reduce_zero_label {
            for p in g.pixels_mut() {
                p.0[0] = reduce_zero_label(p.0[0]);
            }
        }
        Ok(g)
    }

    fn sample(&self, idx: usize) -> Result<&SegSample, DataError> {
        self.samples.get(idx).ok_or(DataError::IndexOutOfRange {
            index: idx,
            len: self.samples.len(),
        })
    }
}

fn collect(root: &Path, dir: &Path, suffix: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(root, &path, suffix, out)?;
        } else if path.to_string_lossy().ends_with(suffix)
            && let Ok(rel) = path.strip_prefix(root)
        {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

impl Dataset for SegDataset {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn load(&self, idx: usize, rng: &mut DataRng) -> Result<Results, DataError> {
        self.load_with(idx, &self.pipeline, rng)
    }

    fn classes(&self) -> &[String] {
        &self.classes
    }

    fn gt_labels(&self) -> Vec<usize> {
        Vec::new()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default)]
    data_root: Option<String>,
    img_dir: String,
    #[serde(default)]
    ann_dir: Option<String>,
    #[serde(default)]
    img_suffix: Option<String>,
    #[serde(default)]
    seg_map_suffix: Option<String>,
    #[serde(default)]
    classes: Option<ClassesArg>,
    #[serde(default)]
    reduce_zero_label: Option<bool>,
    #[serde(rename = "pipeline")]
    _pipeline: IgnoredAny,
    #[serde(default, rename = "test_mode")]
    _test_mode: Option<bool>,
}

/// Builds a segmentation dataset from its node.
pub type SegDatasetBuilder = fn(&ConfigNode<'_>) -> Result<SegDataset, BuildError>;

mona_core::declare_registry! {
    /// Segmentation datasets as training and evaluation need them (label maps, classes),
    /// selected by `data.{train,val,test}.type`. A plugin adds a dataset layout by producing a
    /// [`SegDataset`] (e.g. with [`SegDataset::scan`]).
    pub struct SegDatasetEntry: "segmentation dataset" => SegDatasetBuilder;
}

/// The segmentation dataset of a `data.*` node by its registered `type`; an unknown type
/// names the file, the key and the nearest registered datasets.
pub fn build_concrete(node: &ConfigNode<'_>) -> Result<SegDataset, BuildError> {
    let entry = mona_core::registry::lookup::<SegDatasetEntry>(node)?;
    (entry.build)(node)
}

/// `ADE20KDataset` and `CustomSegDataset` (mmseg's folder layout; ADE20K's classes and
/// reduced zero label by default).
fn build_ade_or_custom(node: &ConfigNode<'_>) -> Result<SegDataset, BuildError> {
    let ade = match node.type_name()? {
        "ADE20KDataset" => true,
        "CustomSegDataset" => false,
        other => {
            return Err(BuildError::invalid(
                node,
                Some("type"),
                format!("{other}: segmentation datasets are ADE20KDataset and CustomSegDataset"),
            ));
        }
    };
    let args: Args = node.extract()?;
    let root = PathBuf::from(args.data_root.unwrap_or_default());
    let classes = match args.classes {
        Some(ClassesArg::Names(n)) => n,
        Some(ClassesArg::File(f)) => mona_data::datasets::read_class_file(&root.join(&f))
            .map_err(|e| BuildError::invalid(node, Some("classes"), e.to_string()))?,
        None if ade => crate::classes::ade20k_classes(),
        None => {
            return Err(BuildError::invalid(
                node,
                Some("classes"),
                "CustomSegDataset needs a class list (names or a class file)",
            ));
        }
    };
    if classes.is_empty() || classes.len() > 255 {
        return Err(BuildError::invalid(
            node,
            Some("classes"),
            "needs between 1 and 255 classes",
        ));
    }
    let pipeline = mona_data::transforms::build_plain_pipeline(&node.child("pipeline")?)?;
    // mmseg: ADE20K and the custom default both use .jpg images and .png label maps.
    let (img_suffix, seg_suffix) = (".jpg", ".png");
    let img_dir = root.join(&args.img_dir);
    let ann_dir = args.ann_dir.map(|a| root.join(a));
    SegDataset::scan(
        &img_dir,
        ann_dir.as_deref(),
        args.img_suffix.as_deref().unwrap_or(img_suffix),
        args.seg_map_suffix.as_deref().unwrap_or(seg_suffix),
        classes,
        args.reduce_zero_label.unwrap_or(ade),
        pipeline,
    )
    .map_err(|e| BuildError::invalid(node, None, e.to_string()))
}

fn build_boxed(node: &ConfigNode<'_>) -> Result<Box<dyn Dataset>, BuildError> {
    build_concrete(node).map(|d| Box::new(d) as Box<dyn Dataset>)
}

inventory::submit! { SegDatasetEntry::new("ADE20KDataset", build_ade_or_custom) }
inventory::submit! { SegDatasetEntry::new("CustomSegDataset", build_ade_or_custom) }
inventory::submit! { DatasetEntry::new("ADE20KDataset", build_boxed) }
inventory::submit! { DatasetEntry::new("CustomSegDataset", build_boxed) }
