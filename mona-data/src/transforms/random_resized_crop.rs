//! `RandomResizedCrop` (mmcls 0.x): crop a random area/aspect window, resize it to `size`.
//!
//! The sampling is mmcls's `get_params`, draw for draw: up to `max_attempts` tries of
//! `area = uniform(scale) * H * W`, `aspect = exp(uniform(log ratio))`,
//! `w = round(sqrt(area * aspect))`, `h = round(sqrt(area / aspect))` (Python's round, ties
//! to even), accepted when `0 < w <= W` and `0 < h <= H`, then offsets `randint(0, H - h)`,
//! `randint(0, W - w)`. If every try fails, the centre crop of the whole image, narrowed to the
//! ratio range. The draws come from our generator, so the windows differ from Python's, but
//! their distribution is the same.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::geometry::{self, Window};
use super::params::{self, SizeArg};
use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::ops::{Backend, Interpolation};
use crate::results::Results;
use crate::rng::DataRng;

/// Crops a random window and resizes it to `size`.
#[derive(Clone, Debug)]
pub struct RandomResizedCrop {
    /// Output `(height, width)`.
    pub size: (usize, usize),
    /// Range of the window's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// Range of the window's width / height.
    pub ratio: (f64, f64),
    pub max_attempts: usize,
    pub interpolation: Interpolation,
    pub backend: Backend,
}

/// A crop window: offsets and size in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

/// mmcls `RandomResizedCrop.get_params` for an image of `height × width`.
pub fn sample_crop_box(
    height: usize,
    width: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    max_attempts: usize,
    rng: &mut DataRng,
) -> CropBox {
    let area = (height * width) as f64;
    let log_ratio = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..max_attempts {
        let target_area = uniform(rng, scale) * area;
        let aspect = uniform(rng, log_ratio).exp();
        let tw = (target_area * aspect).sqrt().round_ties_even();
        let th = (target_area / aspect).sqrt().round_ties_even();
        if tw > 0.0 && tw <= width as f64 && th > 0.0 && th <= height as f64 {
            let (tw, th) = (tw as usize, th as usize);
            let top = rng.random_range(0..=height - th);
            let left = rng.random_range(0..=width - tw);
            return CropBox {
                top,
                left,
                height: th,
                width: tw,
            };
        }
    }
    // Fallback: central crop, narrowed to the ratio range.
    let in_ratio = width as f64 / height as f64;
    let (min_ratio, max_ratio) = (ratio.0.min(ratio.1), ratio.0.max(ratio.1));
    let (tw, th) = if in_ratio < min_ratio {
        (
            width,
            ((width as f64 / min_ratio).round_ties_even() as usize).min(height),
        )
    } else if in_ratio > max_ratio {
        (
            ((height as f64 * max_ratio).round_ties_even() as usize).min(width),
            height,
        )
    } else {
        (width, height)
    };
    CropBox {
        top: (height - th) / 2,
        left: (width - tw) / 2,
        height: th,
        width: tw,
    }
}

/// Python's `random.uniform(a, b)`: `a + (b - a) * random()`.
fn uniform(rng: &mut DataRng, (a, b): (f64, f64)) -> f64 {
    a + (b - a) * rng.random::<f64>()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    size: SizeArg,
    #[serde(default = "default_scale")]
    scale: (f64, f64),
    #[serde(default = "default_ratio")]
    ratio: (f64, f64),
    #[serde(default = "default_attempts")]
    max_attempts: i64,
    #[serde(default)]
    efficientnet_style: bool,
    // Only read by the EfficientNet style, which is refused below; accepted so configs that
    // spell out the defaults still load.
    #[serde(default, rename = "min_covered")]
    _min_covered: Option<IgnoredAny>,
    #[serde(default, rename = "crop_padding")]
    _crop_padding: Option<IgnoredAny>,
    #[serde(default = "params::default_interpolation")]
    interpolation: String,
    #[serde(default = "params::default_backend")]
    backend: String,
}

fn default_scale() -> (f64, f64) {
    (0.08, 1.0)
}
fn default_ratio() -> (f64, f64) {
    (3.0 / 4.0, 4.0 / 3.0)
}
fn default_attempts() -> i64 {
    10
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
    let invalid = |field: &str, message: String| BuildError::invalid(node, Some(field), message);
    if !(args.scale.0 <= args.scale.1 && args.scale.0 >= 0.0) {
        return Err(invalid(
            "scale",
            format!("expected 0 <= min <= max, found {:?}", args.scale),
        ));
    }
    if !(args.ratio.0 <= args.ratio.1 && args.ratio.0 > 0.0) {
        return Err(invalid(
            "ratio",
            format!("expected 0 < min <= max, found {:?}", args.ratio),
        ));
    }
    let max_attempts = usize::try_from(args.max_attempts).map_err(|_| {
        invalid(
            "max_attempts",
            format!("must be >= 0, found {}", args.max_attempts),
        )
    })?;
    Ok(Box::new(RandomResizedCrop {
        size: args.size.positive(node, "size")?,
        scale: args.scale,
        ratio: args.ratio,
        max_attempts,
        interpolation: params::interpolation(node, &args.interpolation)?,
        backend: params::backend(node, &args.backend)?,
    }))
}

inventory::submit! { TransformEntry::new("RandomResizedCrop", build) }

impl Transform for RandomResizedCrop {
    fn apply(&self, r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        let [h, w, _] = r.img.shape();
        if h == 0 || w == 0 {
            return Err(r.error(self.name(), format!("cannot crop {}", r.img.describe())));
        }
        let b = sample_crop_box(h, w, self.scale, self.ratio, self.max_attempts, rng);
        let win = Window {
            x: b.left,
            y: b.top,
            width: b.width,
            height: b.height,
        };
        let r = geometry::crop(r, win, self.name())?;
        let (oh, ow) = self.size;
        geometry::resize(r, (ow, oh), self.interpolation, self.backend, self.name())
    }

    fn name(&self) -> &'static str {
        "RandomResizedCrop"
    }
}
