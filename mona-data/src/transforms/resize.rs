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
//! mmdet 2.x (`img_scale` as one `[w, h]` or a list of them): one scale with an optional
//! `ratio_range`, or a list with `multiscale_mode = "value"` (one scale of the list, uniformly)
//! or `"range"` (long edge uniform in `[min long, max long]`, short edge uniform in
//! `[min short, max short]`, integers inclusive, as mmdet's `random_sample`). Boxes (and
//! ignored boxes) are scaled by `new size / old size` per axis and clipped to the new image
//! (`bbox_clip_border = true`), and `scale_factor` is recorded.
//!
//! A second mmdet `Resize` in one pipeline (the crop-then-rescale policy of DETR-style
//! `AutoAugment`) must set `override = true`: mmdet 2.x keeps the drawn `scale` and the
//! `scale_factor` in the results dict and, meeting both again, asserts "scale and
//! scale_factor cannot be both set" unless `override` pops them and draws a new scale. This
//! `Resize` draws its scale on every call and keeps none, so `override` changes only the
//! check: an `img_scale` Resize without it refuses a sample that an earlier resize already
//! gave a `scale_factor` (a [`DataError`] naming the image), one with it resizes again, and
//! `scale_factor` becomes that last resize's factor (new size / size before it), as in mmdet.
//! (mmseg 0.x has no `override` and would silently reuse the earlier scale; no mmseg config
//! resizes twice, so the error stands for both.)
//!
//! Bilinear uses OpenCV's `INTER_LINEAR` arithmetic (half-pixel centres), or Pillow's with
//! `backend = "pillow"`; see [`crate::ops`].

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;
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

/// How mmdet picks one of several `img_scale`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MultiscaleMode {
    /// One of the listed scales, uniformly.
    Value,
    /// Long and short edges drawn independently between the listed extremes.
    Range,
}

/// What a [`Resize`] aims for.
#[derive(Clone, Debug, PartialEq)]
pub enum ResizeMode {
    /// Exactly `height × width`.
    Exact { height: usize, width: usize },
    /// One side to `target`, keeping the aspect ratio.
    Adaptive { target: usize, side: AdaptiveSide },
    /// mmseg 0.x `Resize(img_scale=(w, h), ratio_range, keep_ratio)`: the scale is multiplied
    /// by `r ~ U(ratio_range)` when given (`(int(w·r), int(h·r))`), then the image is rescaled
    /// keeping its ratio (long side ≤ max, short side ≤ min of the scale; sizes rounded
    /// `int(x·f + 0.5)`) or resized to exactly `w × h`.
    Rescale {
        scale: (usize, usize),
        ratio_range: Option<(f64, f64)>,
        keep_ratio: bool,
    },
    /// mmdet 2.x with several `img_scale`s: a scale is drawn per sample by `mode`, then
    /// applied as [`ResizeMode::Rescale`] without ratio range.
    MultiScale {
        scales: Vec<(usize, usize)>,
        mode: MultiscaleMode,
        keep_ratio: bool,
    },
}

/// mmcv `rescale_size`: the `(w, h)` of a `width × height` image rescaled into `scale`.
pub fn rescale_size(width: usize, height: usize, scale: (usize, usize)) -> (usize, usize) {
    let long = scale.0.max(scale.1) as f64;
    let short = scale.0.min(scale.1) as f64;
    let f = (long / width.max(height) as f64).min(short / width.min(height) as f64);
    (
        ((width as f64 * f) + 0.5) as usize,
        ((height as f64 * f) + 0.5) as usize,
    )
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
            ResizeMode::Rescale {
                scale, keep_ratio, ..
            } => Some(if keep_ratio {
                rescale_size(width, height, scale)
            } else {
                scale
            }),
            // The scale is drawn in `apply`; without a draw, the first one.
            ResizeMode::MultiScale {
                ref scales,
                keep_ratio,
                ..
            } => {
                let scale = *scales.first()?;
                Some(if keep_ratio {
                    rescale_size(width, height, scale)
                } else {
                    scale
                })
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
    /// mmdet's `override`: resize a sample that an earlier resize already scaled (only for
    /// `img_scale` modes; see the module docs).
    pub override_scale: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default)]
    size: Option<SizeArg>,
    /// mmseg / mmdet keys.
    #[serde(default)]
    img_scale: Option<ImgScaleArg>,
    #[serde(default)]
    multiscale_mode: Option<String>,
    #[serde(default)]
    bbox_clip_border: Option<bool>,
    #[serde(default)]
    ratio_range: Option<[f64; 2]>,
    #[serde(default)]
    keep_ratio: Option<bool>,
    #[serde(default)]
    interpolation: Option<String>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default = "default_side")]
    adaptive_side: String,
    /// mmdet `override` (a Rust keyword, hence the rename).
    #[serde(default, rename = "override")]
    override_scale: bool,
}

/// `img_scale`: one `[w, h]` or a list of them (mmdet).
#[derive(Deserialize)]
#[serde(untagged)]
enum ImgScaleArg {
    One([usize; 2]),
    Many(Vec<[usize; 2]>),
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
    if args.bbox_clip_border == Some(false) {
        return Err(BuildError::invalid(
            node,
            Some("bbox_clip_border"),
            "only bbox_clip_border = true (mmdet's default) is supported",
        ));
    }
    let img_scale = match args.img_scale {
        None => None,
        Some(ImgScaleArg::One(s)) => Some(vec![s]),
        Some(ImgScaleArg::Many(v)) => Some(v),
    };
    let mode = args.multiscale_mode.as_deref().unwrap_or("range");
    let multiscale_mode = match mode {
        "range" => MultiscaleMode::Range,
        "value" => MultiscaleMode::Value,
        other => {
            return Err(BuildError::invalid(
                node,
                Some("multiscale_mode"),
                format!("unsupported multiscale_mode \"{other}\"; supported: range, value"),
            ));
        }
    };
    if let Some(scales) = img_scale.as_ref().filter(|s| s.len() != 1) {
        if scales.is_empty() || scales.iter().any(|s| s.contains(&0)) {
            return Err(BuildError::invalid(
                node,
                Some("img_scale"),
                "needs at least one scale, each positive",
            ));
        }
        if args.size.is_some() || args.ratio_range.is_some() {
            return Err(BuildError::invalid(
                node,
                Some("img_scale"),
                "several img_scales exclude size and ratio_range (mmdet asserts this)",
            ));
        }
        return Ok(Box::new(Resize {
            mode: ResizeMode::MultiScale {
                scales: scales.iter().map(|s| (s[0], s[1])).collect(),
                mode: multiscale_mode,
                keep_ratio: args.keep_ratio.unwrap_or(true),
            },
            interpolation: params::interpolation(
                node,
                args.interpolation.as_deref().unwrap_or("bilinear"),
            )?,
            backend: params::backend(node, args.backend.as_deref().unwrap_or("cv2"))?,
            override_scale: args.override_scale,
        }));
    }
    if let Some(scale) = img_scale.and_then(|v| v.first().copied()) {
        if args.size.is_some() {
            return Err(BuildError::invalid(
                node,
                Some("img_scale"),
                "give either size (mmcls) or img_scale (mmseg), not both",
            ));
        }
        if scale.contains(&0) {
            return Err(BuildError::invalid(
                node,
                Some("img_scale"),
                "must be positive",
            ));
        }
        if let Some([lo, hi]) = args.ratio_range
            && !(0.0 < lo && lo <= hi)
        {
            return Err(BuildError::invalid(
                node,
                Some("ratio_range"),
                format!("expected 0 < min <= max, found [{lo}, {hi}]"),
            ));
        }
        // mmseg / mmcv resize with cv2 (bilinear image, nearest labels).
        return Ok(Box::new(Resize {
            mode: ResizeMode::Rescale {
                scale: (scale[0], scale[1]),
                ratio_range: args.ratio_range.map(|r| (r[0], r[1])),
                keep_ratio: args.keep_ratio.unwrap_or(true),
            },
            interpolation: params::interpolation(
                node,
                args.interpolation.as_deref().unwrap_or("bilinear"),
            )?,
            backend: params::backend(node, args.backend.as_deref().unwrap_or("cv2"))?,
            override_scale: args.override_scale,
        }));
    }
    let Some(size) = args.size else {
        return Err(BuildError::invalid(
            node,
            Some("size"),
            "Resize needs size (mmcls) or img_scale (mmseg)",
        ));
    };
    if args.override_scale {
        return Err(BuildError::invalid(
            node,
            Some("override"),
            "override (mmdet) needs img_scale",
        ));
    }
    if args.ratio_range.is_some() || args.keep_ratio.is_some() {
        return Err(BuildError::invalid(
            node,
            Some("ratio_range"),
            "ratio_range / keep_ratio need img_scale",
        ));
    }
    let mode = match size.pair(node, "size")? {
        (n, -1) if matches!(size, SizeArg::Pair(_)) && n > 0 => ResizeMode::Adaptive {
            target: n as usize,
            side,
        },
        _ => {
            let (height, width) = size.positive(node, "size")?;
            ResizeMode::Exact { height, width }
        }
    };
    Ok(Box::new(Resize {
        mode,
        interpolation: params::interpolation(
            node,
            &args
                .interpolation
                .unwrap_or_else(params::default_interpolation),
        )?,
        backend: params::backend(node, &args.backend.unwrap_or_else(params::default_backend))?,
        override_scale: false,
    }))
}

inventory::submit! { TransformEntry::new("Resize", build) }

impl Resize {
    /// mmdet 2.x: `assert 'scale_factor' not in results` when a scale is already set and
    /// `override` is off. Only `img_scale` modes (mmdet / mmseg) take part; mmcls resizes
    /// have no such rule.
    fn check_override(&self, r: &Results) -> Result<(), DataError> {
        let mmdet = matches!(
            self.mode,
            ResizeMode::Rescale { .. } | ResizeMode::MultiScale { .. }
        );
        match r.scale_factor {
            Some(f) if mmdet && !self.override_scale => Err(r.error(
                self.name(),
                format!(
                    "scale and scale_factor cannot be both set (mmdet asserts this): an \
                     earlier resize already scaled this sample (scale_factor {f:?}); a second \
                     Resize in one pipeline must set override = true"
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl Transform for Resize {
    fn apply(&self, r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        self.check_override(&r)?;
        let [h, w, _] = r.img.shape();
        let mode = match self.mode.clone() {
            ResizeMode::Rescale {
                scale,
                ratio_range: Some((lo, hi)),
                keep_ratio,
            } => {
                let ratio = lo + rng.random::<f64>() * (hi - lo);
                ResizeMode::Rescale {
                    scale: (
                        (scale.0 as f64 * ratio) as usize,
                        (scale.1 as f64 * ratio) as usize,
                    ),
                    ratio_range: None,
                    keep_ratio,
                }
            }
            ResizeMode::MultiScale {
                scales,
                mode,
                keep_ratio,
            } => {
                let scale = match mode {
                    // mmdet `random_select`: np.random.randint(len(img_scales))
                    MultiscaleMode::Value => scales[rng.random_range(0..scales.len())],
                    // mmdet `random_sample`: long and short edges drawn independently
                    MultiscaleMode::Range => {
                        let longs = scales.iter().map(|s| s.0.max(s.1));
                        let shorts = scales.iter().map(|s| s.0.min(s.1));
                        let (llo, lhi) = (longs.clone().min(), longs.max());
                        let (slo, shi) = (shorts.clone().min(), shorts.max());
                        match (llo, lhi, slo, shi) {
                            (Some(a), Some(b), Some(c), Some(d)) => {
                                (rng.random_range(a..=b), rng.random_range(c..=d))
                            }
                            _ => return Err(r.error(self.name(), "no img_scale to draw from")),
                        }
                    }
                };
                ResizeMode::Rescale {
                    scale,
                    ratio_range: None,
                    keep_ratio,
                }
            }
            m => m,
        };
        match mode.output_size(w, h) {
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

    #[test]
    fn mmdet_multiscale_draws_listed_scales_and_scales_boxes() {
        use crate::results::{Image, Results};
        use image::RgbImage;
        let t = Resize {
            mode: ResizeMode::MultiScale {
                scales: vec![(1333, 640), (1333, 800)],
                mode: MultiscaleMode::Value,
                keep_ratio: true,
            },
            interpolation: Interpolation::Bilinear,
            backend: Backend::Cv2,
            override_scale: false,
        };
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..20 {
            let mut r = Results::new("x.jpg");
            r.img = Image::U8(RgbImage::new(100, 50));
            r.gt_bboxes = vec![[10.0, 5.0, 50.0, 25.0]];
            r.gt_bboxes_ignore = vec![[0.0, 0.0, 100.0, 50.0]];
            let out = t
                .apply(r, &mut crate::rng::sample_rng(seed, 0, 0))
                .expect("resize");
            let [h, w, _] = out.img_shape;
            seen.insert((w, h));
            let f = w as f32 / 100.0;
            assert_eq!(
                out.scale_factor,
                Some([f, h as f32 / 50.0, f, h as f32 / 50.0])
            );
            assert!((out.gt_bboxes[0][2] - 50.0 * f).abs() < 1e-3);
            assert_eq!(out.gt_bboxes_ignore[0][2], w as f32);
        }
        // (1333, 640) -> 1280x640, (1333, 800) -> 1333x667: the long side limits the second.
        assert_eq!(seen, [(1280, 640), (1333, 667)].into_iter().collect());
    }

    #[test]
    fn mmseg_rescale_keeps_ratio() {
        // (2048, 512): a 640x480 image is limited by its short side: f = 512/480.
        assert_eq!(rescale_size(640, 480, (2048, 512)), (683, 512));
        // a very wide image is limited by its long side: f = 2048/4000.
        assert_eq!(rescale_size(4000, 500, (2048, 512)), (2048, 256));
    }
}
