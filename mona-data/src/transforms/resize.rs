//! `Resize` (mmcls 0.x).
//!
//! mmcls semantics, exactly:
//! - `size = [h, w]`: resize to exactly `h × w`;
//! - `size = n`: resize to `n × n` (mmcls 0.x treats an int as a square, *not* as a short side);
//! - `size = [n, -1]`: keep the aspect ratio and bring the side chosen by `adaptive_side`
//!   (default `"short"`) to `n`; the other side is `int(n * other / side)` (truncated). An
//!   image whose chosen side is already `n` is left untouched. This is the test pipeline of the
//!   Mona classification configs (`size = [256, -1]`).
//!
//! Bilinear uses OpenCV's `INTER_LINEAR` arithmetic (half-pixel centres), or Pillow's with
//! `backend = "pillow"`; see [`crate::ops`].

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::geometry;
use super::params::{self, SizeArg};
use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::ops::{Backend, Interpolation};
use crate::results::Results;
use crate::rng::DataRng;

/// Which side `size = [n, -1]` fixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdaptiveSide {
    Short,
    Long,
    Height,
    Width,
}

/// What a [`Resize`] aims for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// Exactly `height × width`.
    Exact { height: usize, width: usize },
    /// One side to `target`, keeping the aspect ratio.
    Adaptive { target: usize, side: AdaptiveSide },
}

impl ResizeMode {
    /// The output `(width, height)` for an image of `width × height`; `None` to leave it as is.
    pub fn output_size(&self, width: usize, height: usize) -> Option<(usize, usize)> {
        match *self {
            ResizeMode::Exact {
                height: oh,
                width: ow,
            } => Some((ow, oh)),
            ResizeMode::Adaptive { target, side } => {
                let (w, h) = (width, height);
                let already = match side {
                    AdaptiveSide::Short => w.min(h) == target,
                    AdaptiveSide::Long => w.max(h) == target,
                    AdaptiveSide::Height => h == target,
                    AdaptiveSide::Width => w == target,
                };
                if already {
                    return None;
                }
                let fix_width = match side {
                    AdaptiveSide::Short => w < h,
                    AdaptiveSide::Long => w > h,
                    AdaptiveSide::Width => true,
                    AdaptiveSide::Height => false,
                };
                // Python: int(target * h / w), true division then truncation.
                if fix_width {
                    Some((target, ((target * h) as f64 / w as f64) as usize))
                } else {
                    Some((((target * w) as f64 / h as f64) as usize, target))
                }
            }
        }
    }
}

/// Resizes the image (and `gt_seg` with nearest, and boxes).
#[derive(Clone, Debug)]
pub struct Resize {
    pub mode: ResizeMode,
    pub interpolation: Interpolation,
    pub backend: Backend,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    size: SizeArg,
    #[serde(default = "params::default_interpolation")]
    interpolation: String,
    #[serde(default = "params::default_backend")]
    backend: String,
    #[serde(default = "default_side")]
    adaptive_side: String,
}

fn default_side() -> String {
    "short".to_string()
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    let side = match args.adaptive_side.as_str() {
        "short" => AdaptiveSide::Short,
        "long" => AdaptiveSide::Long,
        "height" => AdaptiveSide::Height,
        "width" => AdaptiveSide::Width,
        other => {
            return Err(BuildError::invalid(
                node,
                Some("adaptive_side"),
                format!(
                    "unsupported adaptive_side \"{other}\"; supported: short, long, height, width"
                ),
            ));
        }
    };
    let mode = match args.size.pair(node, "size")? {
        (n, -1) if matches!(args.size, SizeArg::Pair(_)) && n > 0 => ResizeMode::Adaptive {
            target: n as usize,
            side,
        },
        _ => {
            let (height, width) = args.size.positive(node, "size")?;
            ResizeMode::Exact { height, width }
        }
    };
    Ok(Box::new(Resize {
        mode,
        interpolation: params::interpolation(node, &args.interpolation)?,
        backend: params::backend(node, &args.backend)?,
    }))
}

inventory::submit! { TransformEntry::new("Resize", build) }

impl Transform for Resize {
    fn apply(&self, r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        let [h, w, _] = r.img.shape();
        match self.mode.output_size(w, h) {
            None => Ok(r),
            Some(size) => geometry::resize(r, size, self.interpolation, self.backend, self.name()),
        }
    }

    fn name(&self) -> &'static str {
        "Resize"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_side() {
        let m = ResizeMode::Adaptive {
            target: 256,
            side: AdaptiveSide::Short,
        };
        assert_eq!(m.output_size(300, 200), Some((384, 256)));
        assert_eq!(m.output_size(200, 300), Some((256, 384)));
        assert_eq!(m.output_size(333, 500), Some((256, 384))); // 256*500/333 = 384.38
        assert_eq!(m.output_size(256, 999), None);
    }
}
