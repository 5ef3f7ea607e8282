//! `RandomCrop` (mmdet 2.x, `mmdet/datasets/pipelines/transforms.py`): a random window of a
//! size drawn by `crop_type`, with the boxes, labels, masks and ignored boxes following it.
//!
//! Registered under the shared name `RandomCrop`; `random_crop.rs` decides between this and
//! mmseg's crop (see the rule there).
//!
//! mmdet semantics, exactly:
//! - crop size (`_get_crop_size`, `crop_size = [h, w]`): `absolute` → `(min(h, ch), min(w, cw))`;
//!   `absolute_range` (`crop_size = [lo, hi]`) → `crop_h = randint(min(h, lo), min(h, hi) + 1)`,
//!   then `crop_w` likewise from `w`; `relative` → `int(h·ch + 0.5), int(w·cw + 0.5)`;
//!   `relative_range` → `c + U(0, 1)·(1 − c)` per axis (h first), then as `relative`.
//! - window (`_crop_data`): `margin = max(dim − crop, 0)`, `offset = randint(0, margin + 1)`,
//!   height first.
//! - boxes (and, separately, ignored boxes): shifted by `−offset`, clipped to the crop when
//!   `bbox_clip_border`, kept when `x2 > x1 and y2 > y1`. Labels and masks of `gt_bboxes`
//!   follow its kept indices; each kept mask is cropped to the window. `recompute_bbox`
//!   replaces the kept boxes by their masks' bounding boxes (`BitmapMasks.get_bboxes`).
//! - no `gt_bboxes` left and `allow_negative_crop = false`: mmdet returns `None` and its
//!   dataset draws another image. Here that is a [`DataError`] naming the image (the loader
//!   does not substitute samples); configs that crop aggressively set
//!   `allow_negative_crop = true`, as the DETR-style Mona COCO config does, and the sample then
//!   continues with zero boxes.
//! - `gt_seg` is cropped to the same window; `img_shape` becomes the crop's shape.

use image::GrayImage;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::Transform;
use super::geometry::{self, Window};
use crate::error::DataError;
use crate::masks::mask_bbox;
use crate::ops;
use crate::results::Results;
use crate::rng::DataRng;

/// mmdet's `crop_type` with its `crop_size`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CropSpec {
    /// `(h, w)` in pixels, limited to the image.
    Absolute { height: usize, width: usize },
    /// Both sides drawn in `[min, max]` pixels, limited to the image.
    AbsoluteRange { min: usize, max: usize },
    /// Fractions `(h, w)` of the image, in `(0, 1]`.
    Relative { height: f64, width: f64 },
    /// Fractions drawn in `[h, 1)` and `[w, 1)`.
    RelativeRange { height: f64, width: f64 },
}

/// The mmdet 2.x `RandomCrop`.
#[derive(Clone, Debug, PartialEq)]
pub struct DetRandomCrop {
    pub spec: CropSpec,
    pub allow_negative_crop: bool,
    pub bbox_clip_border: bool,
    pub recompute_bbox: bool,
}

/// mmdet keys, as written in configs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    crop_size: [f64; 2],
    #[serde(default)]
    crop_type: Option<String>,
    #[serde(default)]
    allow_negative_crop: bool,
    #[serde(default)]
    recompute_bbox: bool,
    #[serde(default = "yes")]
    bbox_clip_border: bool,
}

fn yes() -> bool {
    true
}

/// Builds the mmdet crop from its config node (called by `RandomCrop`'s builder).
pub(crate) fn build(node: &ConfigNode<'_>) -> Result<DetRandomCrop, BuildError> {
    let args: Args = node.extract()?;
    let [a, b] = args.crop_size;
    let crop_type = args.crop_type.as_deref().unwrap_or("absolute");
    let ints = || -> Result<(usize, usize), BuildError> {
        // mmdet asserts `isinstance(crop_size[i], int)` and `> 0` for absolute types.
        if a.fract() != 0.0 || b.fract() != 0.0 || a < 1.0 || b < 1.0 {
            return Err(BuildError::invalid(
                node,
                Some("crop_size"),
                format!("crop_type \"{crop_type}\" needs two positive integers, found [{a}, {b}]"),
            ));
        }
        Ok((a as usize, b as usize))
    };
    let fractions = || -> Result<(f64, f64), BuildError> {
        // mmdet asserts `0 < crop_size[i] <= 1` for relative types.
        if !(0.0 < a && a <= 1.0 && 0.0 < b && b <= 1.0) {
            return Err(BuildError::invalid(
                node,
                Some("crop_size"),
                format!("crop_type \"{crop_type}\" needs fractions in (0, 1], found [{a}, {b}]"),
            ));
        }
        Ok((a, b))
    };
    let spec = match crop_type {
        "absolute" => {
            let (height, width) = ints()?;
            CropSpec::Absolute { height, width }
        }
        "absolute_range" => {
            let (min, max) = ints()?;
            if min > max {
                // mmdet asserts `crop_size[0] <= crop_size[1]` (at call time).
                return Err(BuildError::invalid(
                    node,
                    Some("crop_size"),
                    format!(
                        "absolute_range needs [min, max] with min <= max, found [{min}, {max}]"
                    ),
                ));
            }
            CropSpec::AbsoluteRange { min, max }
        }
        "relative" => {
            let (height, width) = fractions()?;
            CropSpec::Relative { height, width }
        }
        "relative_range" => {
            let (height, width) = fractions()?;
            CropSpec::RelativeRange { height, width }
        }
        other => {
            return Err(BuildError::invalid(
                node,
                Some("crop_type"),
                format!(
                    "unsupported crop_type \"{other}\"; supported: absolute, absolute_range, \
                     relative, relative_range"
                ),
            ));
        }
    };
    Ok(DetRandomCrop {
        spec,
        allow_negative_crop: args.allow_negative_crop,
        bbox_clip_border: args.bbox_clip_border,
        recompute_bbox: args.recompute_bbox,
    })
}

impl DetRandomCrop {
    /// mmdet `_get_crop_size` for an `h × w` image: `(crop_h, crop_w)`.
    pub fn crop_size(&self, h: usize, w: usize, rng: &mut DataRng) -> (usize, usize) {
        // Python `int(x + 0.5)` of a non-negative value.
        let frac = |dim: usize, f: f64| (dim as f64 * f + 0.5) as usize;
        match self.spec {
            CropSpec::Absolute { height, width } => (height.min(h), width.min(w)),
            CropSpec::AbsoluteRange { min, max } => {
                let ch = rng.random_range(min.min(h)..=max.min(h));
                let cw = rng.random_range(min.min(w)..=max.min(w));
                (ch, cw)
            }
            CropSpec::Relative { height, width } => (frac(h, height), frac(w, width)),
            CropSpec::RelativeRange { height, width } => {
                // np.asarray(crop_size, float32) + np.random.rand(2) * (1 - crop_size)
                let (ch, cw) = (height as f32 as f64, width as f32 as f64);
                let uh: f64 = rng.random();
                let uw: f64 = rng.random();
                (frac(h, ch + uh * (1.0 - ch)), frac(w, cw + uw * (1.0 - cw)))
            }
        }
    }

    /// mmdet `_crop_data`'s window for a `crop_h × crop_w` crop of an `h × w` image.
    fn window(h: usize, w: usize, (ch, cw): (usize, usize), rng: &mut DataRng) -> Window {
        let y = rng.random_range(0..=h.saturating_sub(ch));
        let x = rng.random_range(0..=w.saturating_sub(cw));
        // numpy slicing stops at the border (never reached: crop sizes are <= the image).
        Window {
            x,
            y,
            width: cw.min(w - x),
            height: ch.min(h - y),
        }
    }

    /// Shifts `boxes` into `win`, clips them when `bbox_clip_border`, and returns the kept
    /// boxes with their indices (`x2 > x1 and y2 > y1`).
    fn shift_and_filter(&self, boxes: &[[f32; 4]], win: Window) -> (Vec<[f32; 4]>, Vec<usize>) {
        let (ox, oy) = (win.x as f32, win.y as f32);
        let (w, h) = (win.width as f32, win.height as f32);
        let mut kept = Vec::new();
        let mut index = Vec::new();
        for (i, b) in boxes.iter().enumerate() {
            let mut s = [b[0] - ox, b[1] - oy, b[2] - ox, b[3] - oy];
            if self.bbox_clip_border {
                s = [
                    s[0].clamp(0.0, w),
                    s[1].clamp(0.0, h),
                    s[2].clamp(0.0, w),
                    s[3].clamp(0.0, h),
                ];
            }
            if s[2] > s[0] && s[3] > s[1] {
                kept.push(s);
                index.push(i);
            }
        }
        (kept, index)
    }

    /// Checks that labels and masks match the boxes one to one and masks match the image.
    fn check_annotations(&self, r: &Results) -> Result<(), DataError> {
        let n = r.gt_bboxes.len();
        if r.gt_labels.len() != n {
            return Err(r.error(
                self.name(),
                format!("{n} gt_bboxes but {} gt_labels", r.gt_labels.len()),
            ));
        }
        if let Some(masks) = &r.gt_masks
            && masks.len() != n
        {
            return Err(r.error(
                self.name(),
                format!("{n} gt_bboxes but {} gt_masks", masks.len()),
            ));
        }
        r.check_mask_sizes(self.name())
    }
}

impl Transform for DetRandomCrop {
    fn apply(&self, mut r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        let [h, w, _] = r.img.shape();
        let size = self.crop_size(h, w, rng);
        if size.0 == 0 || size.1 == 0 {
            // mmdet asserts crop_size[0] > 0 and crop_size[1] > 0 in `_crop_data`.
            return Err(r.error(
                self.name(),
                format!(
                    "empty crop {}x{} of the {w}x{h} image ({:?})",
                    size.1, size.0, self.spec
                ),
            ));
        }
        self.check_annotations(&r)?;
        let win = Self::window(h, w, size, rng);
        // The generic crop handles the image and gt_seg; boxes and masks follow mmdet's rule.
        let boxes = std::mem::take(&mut r.gt_bboxes);
        let ignore = std::mem::take(&mut r.gt_bboxes_ignore);
        let masks = r.gt_masks.take();
        let mut r = geometry::crop(r, win, self.name())?;
        let (kept, index) = self.shift_and_filter(&boxes, win);
        if index.is_empty() && !self.allow_negative_crop {
            return Err(r.error(
                self.name(),
                format!(
                    "no gt box is left in the {}x{} crop at ({}, {}) of the {w}x{h} image; \
                     mmdet skips such a sample (returns None) while this loader cannot \
                     substitute one: set allow_negative_crop = true to keep it without boxes",
                    win.width, win.height, win.x, win.y
                ),
            ));
        }
        r.gt_labels = index.iter().map(|&i| r.gt_labels[i]).collect();
        r.gt_bboxes = kept;
        if let Some(masks) = masks {
            let (x, y, cw, ch) = (
                win.x as u32,
                win.y as u32,
                win.width as u32,
                win.height as u32,
            );
            let cropped: Vec<GrayImage> = index
                .iter()
                .map(|&i| ops::crop(&masks[i], x, y, cw, ch))
                .collect();
            if self.recompute_bbox {
                r.gt_bboxes = cropped.iter().map(mask_bbox).collect();
            }
            r.gt_masks = Some(cropped);
        }
        // mmdet filters gt_bboxes_ignore with its own valid indices (no labels, no masks).
        r.gt_bboxes_ignore = self.shift_and_filter(&ignore, win).0;
        Ok(r)
    }

    fn name(&self) -> &'static str {
        "RandomCrop"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn crop(spec: CropSpec) -> DetRandomCrop {
        DetRandomCrop {
            spec,
            allow_negative_crop: false,
            bbox_clip_border: true,
            recompute_bbox: false,
        }
    }

    #[test]
    fn crop_sizes_follow_crop_type() {
        let mut rng = DataRng::seed_from_u64(0);
        let abs = crop(CropSpec::Absolute {
            height: 300,
            width: 50,
        });
        assert_eq!(abs.crop_size(200, 100, &mut rng), (200, 50));
        let rel = crop(CropSpec::Relative {
            height: 0.5,
            width: 0.25,
        });
        // int(201 * 0.5 + 0.5) = 101, int(99 * 0.25 + 0.5) = 25
        assert_eq!(rel.crop_size(201, 99, &mut rng), (101, 25));
        let range = crop(CropSpec::AbsoluteRange { min: 384, max: 600 });
        for _ in 0..50 {
            let (ch, cw) = range.crop_size(500, 1000, &mut rng);
            assert!((384..=500).contains(&ch), "{ch}");
            assert!((384..=600).contains(&cw), "{cw}");
        }
        // an image smaller than min: randint(h, h + 1) = h
        assert_eq!(range.crop_size(300, 200, &mut rng), (300, 200));
        let rr = crop(CropSpec::RelativeRange {
            height: 0.5,
            width: 1.0,
        });
        for _ in 0..50 {
            let (ch, cw) = rr.crop_size(100, 80, &mut rng);
            assert!((50..=100).contains(&ch), "{ch}");
            assert_eq!(cw, 80);
        }
    }
}
