//! `CenterCrop` (mmcls 0.x): the `crop_size` window at the centre.
//!
//! mmcls: `y1 = max(0, round((H - h) / 2))` (Python's round, ties to even),
//! `x1` likewise, and the window is clipped to the image, so an image smaller than the crop is
//! returned (partly) uncropped rather than padded.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::geometry::{self, Window};
use super::params::SizeArg;
use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;

/// Crops the centre `height × width` window.
#[derive(Clone, Debug)]
pub struct CenterCrop {
    /// `(height, width)`.
    pub crop_size: (usize, usize),
}

impl CenterCrop {
    /// The window mmcls takes from an image of `width × height`.
    pub fn window(&self, width: usize, height: usize) -> (usize, usize, usize, usize) {
        let (ch, cw) = self.crop_size;
        let start = |full: usize, crop: usize| -> usize {
            ((full as f64 - crop as f64) / 2.0)
                .round_ties_even()
                .max(0.0) as usize
        };
        let (x1, y1) = (start(width, cw), start(height, ch));
        let x2 = width.min(x1 + cw);
        let y2 = height.min(y1 + ch);
        (x1, y1, x2 - x1, y2 - y1)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    crop_size: SizeArg,
    #[serde(default)]
    efficientnet_style: bool,
    // Only read by the EfficientNet style (refused below).
    #[serde(default, rename = "crop_padding")]
    _crop_padding: Option<IgnoredAny>,
    #[serde(default, rename = "interpolation")]
    _interpolation: Option<IgnoredAny>,
    #[serde(default, rename = "backend")]
    _backend: Option<IgnoredAny>,
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    if args.efficientnet_style {
        return Err(BuildError::invalid(
            node,
            Some("efficientnet_style"),
            "efficientnet_style = true is not supported",
        ));
    }
    Ok(Box::new(CenterCrop {
        crop_size: args.crop_size.positive(node, "crop_size")?,
    }))
}

inventory::submit! { TransformEntry::new("CenterCrop", build) }

impl Transform for CenterCrop {
    fn apply(&self, r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        let [h, w, _] = r.img.shape();
        if h == 0 || w == 0 {
            return Err(r.error(self.name(), format!("cannot crop {}", r.img.describe())));
        }
        let (x, y, width, height) = self.window(w, h);
        geometry::crop(
            r,
            Window {
                x,
                y,
                width,
                height,
            },
            self.name(),
        )
    }

    fn name(&self) -> &'static str {
        "CenterCrop"
    }
}
