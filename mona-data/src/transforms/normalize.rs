//! `Normalize` (mmcv `imnormalize`): 8-bit HWC → `f32` planar CHW,
//! `(x - mean) * (1 / std)` per channel.
//!
//! The arithmetic is mmcv's (`cv2.subtract` then `cv2.multiply` by `1 / std`), checked bit for
//! bit against OpenCV 4.10: the subtraction is in `f32` with the mean rounded to `f32`, the
//! product in `f64` with the reciprocal kept in `f64`, rounded once to `f32`.
//!
//! Channel order: mmcv decodes BGR and `to_rgb = true` swaps to RGB before normalising; our
//! images are RGB already, so `to_rgb = true` keeps them and `to_rgb = false` emits the planes
//! in B, G, R order, reproducing what mmcv feeds the model in both cases. `mean` and `std` are
//! in the order of the output planes, as in mmcv.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::{Image, Results};
use crate::rng::DataRng;

/// Converts to normalised planar floats.
#[derive(Clone, Debug)]
pub struct Normalize {
    pub mean: [f32; 3],
    /// `1 / std`, kept in `f64` as OpenCV does.
    pub std_inv: [f64; 3],
    pub to_rgb: bool,
}

impl Normalize {
    pub fn new(mean: [f64; 3], std: [f64; 3], to_rgb: bool) -> Self {
        Normalize {
            mean: mean.map(|m| m as f32),
            std_inv: std.map(|s| 1.0 / s),
            to_rgb,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    mean: Vec<f64>,
    std: Vec<f64>,
    #[serde(default = "default_to_rgb")]
    to_rgb: bool,
}

fn default_to_rgb() -> bool {
    true
}

fn three(node: &ConfigNode<'_>, field: &str, v: &[f64]) -> Result<[f64; 3], BuildError> {
    <[f64; 3]>::try_from(v).map_err(|_| {
        BuildError::invalid(
            node,
            Some(field),
            format!("expected 3 values (one per channel), found {}", v.len()),
        )
    })
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    let mean = three(node, "mean", &args.mean)?;
    let std = three(node, "std", &args.std)?;
    if let Some(bad) = std.iter().find(|s| !(s.is_finite() && **s != 0.0)) {
        return Err(BuildError::invalid(
            node,
            Some("std"),
            format!("std values must be finite and non-zero, found {bad}"),
        ));
    }
    Ok(Box::new(Normalize::new(mean, std, args.to_rgb)))
}

inventory::submit! { TransformEntry::new("Normalize", build) }

impl Transform for Normalize {
    fn apply(&self, mut r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        let img = r.take_u8(self.name())?;
        let (width, height) = (img.width() as usize, img.height() as usize);
        let plane = width * height;
        let mut data = vec![0f32; 3 * plane];
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            for c in 0..3 {
                let src = if self.to_rgb { c } else { 2 - c };
                let centred = f32::from(px[src]) - self.mean[c];
                data[c * plane + i] = (f64::from(centred) * self.std_inv[c]) as f32;
            }
        }
        r.img = Image::F32 {
            data,
            channels: 3,
            height,
            width,
        };
        Ok(r)
    }

    fn name(&self) -> &'static str {
        "Normalize"
    }
}
