//! `RandomCrop`: one registry name for mmseg's crop and mmdet's.
//!
//! mmseg 0.x `RandomCrop(crop_size, cat_max_ratio=1., ignore_index=255)` ([`RandomCrop`] here):
//! a random `crop_size` window (smaller when the image is), retried up to 10 times while one
//! class covers more than `cat_max_ratio` of the non-ignored labels.
//! mmdet 2.x `RandomCrop(crop_size, crop_type, allow_negative_crop, recompute_bbox,
//! bbox_clip_border)` ([`DetRandomCrop`], in `det_random_crop.rs`): boxes, labels and masks
//! follow the crop.
//!
//! Which one a config means (a registry name must be unique, so the builder decides):
//! 1. any of `crop_type`, `allow_negative_crop`, `bbox_clip_border`, `recompute_bbox` ⇒ mmdet;
//! 2. any of `cat_max_ratio`, `ignore_index` ⇒ mmseg (keys of both kinds: a build error);
//! 3. only `crop_size` ⇒ decided per sample when applied: a detection sample (non-empty
//!    `gt_bboxes`, `gt_labels` or `gt_bboxes_ignore`, or `gt_masks` loaded) gets mmdet's crop
//!    with its defaults (`absolute`, no negative crops, clipped boxes); any other sample
//!    (`gt_seg`, or an image alone) gets mmseg's. For an image alone both draw the same window
//!    (`offset = randint(0, max(dim − crop, 0) + 1)`, height first).

use image::GrayImage;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::det_random_crop::{self, DetRandomCrop};
use super::geometry::{self, Window};
use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;

/// mmseg 0.x `RandomCrop`.
#[derive(Clone, Debug)]
pub struct RandomCrop {
    /// `(height, width)`.
    pub crop_size: (usize, usize),
    pub cat_max_ratio: f64,
    pub ignore_index: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    crop_size: [usize; 2],
    #[serde(default = "one")]
    cat_max_ratio: f64,
    #[serde(default = "ignore")]
    ignore_index: u8,
}

fn one() -> f64 {
    1.0
}
fn ignore() -> u8 {
    255
}

/// Keys only mmdet's `RandomCrop` takes.
const DET_KEYS: [&str; 4] = [
    "crop_type",
    "allow_negative_crop",
    "bbox_clip_border",
    "recompute_bbox",
];
/// Keys only mmseg's `RandomCrop` takes.
const SEG_KEYS: [&str; 2] = ["cat_max_ratio", "ignore_index"];

/// Picks mmdet's or mmseg's crop by the keys given (rule in the module docs).
fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let present = |keys: &[&'static str]| keys.iter().copied().find(|k| node.get(k).is_some());
    match (present(&DET_KEYS), present(&SEG_KEYS)) {
        (Some(det), Some(seg)) => Err(BuildError::invalid(
            node,
            Some(seg),
            format!(
                "`{seg}` is an argument of mmseg's RandomCrop but `{det}` one of mmdet's; \
                 give the arguments of one of them"
            ),
        )),
        (Some(_), None) => Ok(Box::new(det_random_crop::build(node)?)),
        (None, Some(_)) => Ok(Box::new(build_seg(node)?)),
        (None, None) => Ok(Box::new(PerSampleCrop {
            seg: build_seg(node)?,
            det: det_random_crop::build(node)?,
        })),
    }
}

/// `RandomCrop(crop_size)` alone: mmdet's crop for detection samples, mmseg's otherwise.
struct PerSampleCrop {
    seg: RandomCrop,
    det: DetRandomCrop,
}

/// Whether a sample carries detection annotations (rule 3 of the module docs).
fn is_detection(r: &Results) -> bool {
    !r.gt_bboxes.is_empty()
        || !r.gt_labels.is_empty()
        || !r.gt_bboxes_ignore.is_empty()
        || r.gt_masks.is_some()
}

impl Transform for PerSampleCrop {
    fn apply(&self, r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        if is_detection(&r) {
            self.det.apply(r, rng)
        } else {
            self.seg.apply(r, rng)
        }
    }

    fn name(&self) -> &'static str {
        "RandomCrop"
    }
}

fn build_seg(node: &ConfigNode<'_>) -> Result<RandomCrop, BuildError> {
    let args: Args = node.extract()?;
    if args.crop_size.contains(&0) {
        return Err(BuildError::invalid(
            node,
            Some("crop_size"),
            "must be positive",
        ));
    }
    Ok(RandomCrop {
        crop_size: (args.crop_size[0], args.crop_size[1]),
        cat_max_ratio: args.cat_max_ratio,
        ignore_index: args.ignore_index,
    })
}

inventory::submit! { TransformEntry::new("RandomCrop", build) }

impl RandomCrop {
    /// mmseg `get_crop_bbox`: offsets uniform in `[0, size − crop]`.
    fn window(&self, h: usize, w: usize, rng: &mut DataRng) -> Window {
        let (ch, cw) = self.crop_size;
        let margin_h = h.saturating_sub(ch);
        let margin_w = w.saturating_sub(cw);
        let y = rng.random_range(0..=margin_h);
        let x = rng.random_range(0..=margin_w);
        Window {
            x,
            y,
            width: cw.min(w),
            height: ch.min(h),
        }
    }

    fn acceptable(&self, seg: &GrayImage, win: Window) -> bool {
        let mut counts = [0usize; 256];
        for y in win.y..win.y + win.height {
            for x in win.x..win.x + win.width {
                counts[seg.get_pixel(x as u32, y as u32).0[0] as usize] += 1;
            }
        }
        counts[self.ignore_index as usize] = 0;
        let nonzero: Vec<usize> = counts.iter().copied().filter(|&c| c > 0).collect();
        let total: usize = nonzero.iter().sum();
        let max = nonzero.iter().copied().max().unwrap_or(0);
        nonzero.len() > 1 && (max as f64) / (total as f64) < self.cat_max_ratio
    }
}

impl Transform for RandomCrop {
    fn apply(&self, r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        let [h, w, _] = r.img.shape();
        let mut win = self.window(h, w, rng);
        if self.cat_max_ratio < 1.0
            && let Some(seg) = &r.gt_seg
        {
            r.check_seg_size(self.name())?;
            for _ in 0..10 {
                if self.acceptable(seg, win) {
                    break;
                }
                win = self.window(h, w, rng);
            }
        }
        geometry::crop(r, win, self.name())
    }

    fn name(&self) -> &'static str {
        "RandomCrop"
    }
}
