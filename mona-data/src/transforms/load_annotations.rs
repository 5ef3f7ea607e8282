//! `LoadAnnotations` (mmseg): the dataset has already read the label PNG into `gt_seg`
//! (Results carries no annotation path); this checks it against the image and applies
//! `reduce_zero_label` (0 → 255, others − 1).
//!
//! mmdet's form (`with_bbox`, `with_label`, `with_mask`, `with_seg`): detection datasets put
//! the boxes and labels into the sample before the pipeline runs (mmdet reads them from
//! `ann_info` at this step); this checks that every box has a label. Masks are not supported
//! yet and are refused rather than silently dropped.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;

#[derive(Clone, Debug, Default)]
pub struct LoadAnnotations {
    pub reduce_zero_label: bool,
    /// mmdet form: boxes and labels instead of a segmentation map.
    pub detection: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default)]
    reduce_zero_label: bool,
    #[serde(default, rename = "imdecode_backend")]
    _imdecode_backend: Option<String>,
    #[serde(default)]
    with_bbox: Option<bool>,
    #[serde(default)]
    with_label: Option<bool>,
    #[serde(default)]
    with_mask: Option<bool>,
    #[serde(default)]
    with_seg: Option<bool>,
    #[serde(default, rename = "poly2mask")]
    _poly2mask: Option<bool>,
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    let detection = args.with_bbox.is_some()
        || args.with_label.is_some()
        || args.with_mask.is_some()
        || args.with_seg.is_some();
    for (key, value) in [("with_mask", args.with_mask), ("with_seg", args.with_seg)] {
        if value == Some(true) {
            return Err(BuildError::invalid(
                node,
                Some(key),
                "detection masks / semantic maps are not supported yet",
            ));
        }
    }
    Ok(Box::new(LoadAnnotations {
        reduce_zero_label: args.reduce_zero_label,
        detection,
    }))
}

inventory::submit! { TransformEntry::new("LoadAnnotations", build) }

/// mmseg's `reduce_zero_label` on raw label values.
pub fn reduce_zero_label(v: u8) -> u8 {
    match v {
        0 | 255 => 255,
        x => x - 1,
    }
}

impl Transform for LoadAnnotations {
    fn apply(&self, mut r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        if self.detection {
            if r.gt_bboxes.len() != r.gt_labels.len() {
                return Err(r.error(
                    self.name(),
                    format!(
                        "{} boxes but {} labels",
                        r.gt_bboxes.len(),
                        r.gt_labels.len()
                    ),
                ));
            }
            return Ok(r);
        }
        if r.gt_seg.is_none() {
            return Err(r.error(
                self.name(),
                "no segmentation map: this dataset provides no annotations",
            ));
        }
        r.check_seg_size(self.name())?;
        if self.reduce_zero_label
            && let Some(seg) = r.gt_seg.as_mut()
        {
            for p in seg.pixels_mut() {
                p.0[0] = reduce_zero_label(p.0[0]);
            }
        }
        Ok(r)
    }

    fn name(&self) -> &'static str {
        "LoadAnnotations"
    }
}
