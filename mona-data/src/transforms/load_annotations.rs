//! `LoadAnnotations` (mmseg): the dataset has already read the label PNG into `gt_seg`
//! (Results carries no annotation path); this checks it against the image and applies
//! `reduce_zero_label` (0 → 255, others − 1).
//!
//! mmdet's form (`with_bbox`, `with_label`, `with_mask`, `with_seg`): detection datasets put
//! the boxes and labels into the sample before the pipeline runs (mmdet reads them from
//! `ann_info` at this step); this checks that every box has a label. With `with_mask = true`
//! the raw mask annotations the dataset put into `gt_mask_anns` (one per box) are rasterised
//! into `gt_masks` at the annotation's image size, exactly as mmdet's `_poly2mask` does
//! (see [`crate::masks`]). Only bitmap masks exist here: `poly2mask = false` (mmdet's
//! `PolygonMasks`) is refused, as is `with_seg` (COCO-stuff semantic maps).

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::masks::rasterize;
use crate::results::{Image, Results};
use crate::rng::DataRng;

#[derive(Clone, Debug, Default)]
pub struct LoadAnnotations {
    pub reduce_zero_label: bool,
    /// mmdet form: boxes and labels instead of a segmentation map.
    pub detection: bool,
    /// mmdet `with_mask`: rasterise `gt_mask_anns` into `gt_masks`.
    pub with_mask: bool,
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
    #[serde(default)]
    poly2mask: Option<bool>,
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    let detection = args.with_bbox.is_some()
        || args.with_label.is_some()
        || args.with_mask.is_some()
        || args.with_seg.is_some();
    if args.with_seg == Some(true) {
        return Err(BuildError::invalid(
            node,
            Some("with_seg"),
            "semantic maps in detection datasets are not supported",
        ));
    }
    let with_mask = args.with_mask == Some(true);
    if with_mask && args.poly2mask == Some(false) {
        return Err(BuildError::invalid(
            node,
            Some("poly2mask"),
            "only bitmap masks are supported (mmdet's BitmapMasks, poly2mask = true); \
             polygon masks (PolygonMasks) are not",
        ));
    }
    Ok(Box::new(LoadAnnotations {
        reduce_zero_label: args.reduce_zero_label,
        detection,
        with_mask,
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

impl LoadAnnotations {
    /// mmdet `_load_masks` with `poly2mask = True`: one bitmap per box, at the annotation's
    /// `img_info` size (which must be the decoded image's, when it is already decoded, or the
    /// masks would not line up with the pixels).
    fn load_masks(&self, mut r: Results) -> Result<Results, DataError> {
        let Some(anns) = r.gt_mask_anns.take() else {
            return Err(r.error(
                self.name(),
                "with_mask = true but the dataset provides no instance masks for this image \
                 (VOC has none; COCO keeps `segmentation`)",
            ));
        };
        if anns.instances.len() != r.gt_bboxes.len() {
            return Err(r.error(
                self.name(),
                format!(
                    "{} mask annotations for {} boxes",
                    anns.instances.len(),
                    r.gt_bboxes.len()
                ),
            ));
        }
        let [h, w, _] = r.img.shape();
        if !matches!(r.img, Image::NotLoaded) && (anns.height, anns.width) != (h, w) {
            return Err(r.error(
                self.name(),
                format!(
                    "the annotation gives the image size {}x{} but the decoded image is {w}x{h}; \
                     masks are rasterised at the annotation's size",
                    anns.width, anns.height
                ),
            ));
        }
        let mut masks = Vec::with_capacity(anns.instances.len());
        for (i, ann) in anns.instances.iter().enumerate() {
            let Some(ann) = ann else {
                return Err(r.error(
                    self.name(),
                    format!(
                        "box {i} {:?} has no `segmentation` (mmdet needs one for every \
                         non-crowd box when with_mask = true)",
                        r.gt_bboxes[i]
                    ),
                ));
            };
            let mask = rasterize(ann, anns.height, anns.width)
                .map_err(|e| r.error(self.name(), format!("mask of box {i}: {e}")))?;
            masks.push(mask);
        }
        r.gt_masks = Some(masks);
        Ok(r)
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
            if self.with_mask {
                return self.load_masks(r);
            }
            // mmdet loads no masks then; dropping the raw ones keeps later transforms (which
            // may filter boxes) from carrying stale, misaligned annotations.
            r.gt_mask_anns = None;
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
