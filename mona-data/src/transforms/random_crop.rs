//! `RandomCrop` (mmseg): a random `crop_size` window (smaller when the image is), retried up
//! to 10 times while one class covers more than `cat_max_ratio` of the non-ignored labels.

use image::GrayImage;
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::geometry::{self, Window};
use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;

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

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    if args.crop_size.contains(&0) {
        return Err(BuildError::invalid(
            node,
            Some("crop_size"),
            "must be positive",
        ));
    }
    Ok(Box::new(RandomCrop {
        crop_size: (args.crop_size[0], args.crop_size[1]),
        cat_max_ratio: args.cat_max_ratio,
        ignore_index: args.ignore_index,
    }))
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
