//! mmdet's `AnchorGenerator` (RetinaNet style: octave scales, `center_offset` 0,
//! `scale_major`): base anchors per level, the grid of anchors in row order `(y, x, a)` with
//! `a = ratio_idx · num_scales + scale_idx`, and the valid flags of a padded image.

use crate::ops::boxes::Box4;
use serde::Deserialize;

/// The `anchor_generator` config of mmdet (`type = "AnchorGenerator"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnchorGeneratorConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub strides: Vec<usize>,
    pub ratios: Vec<f64>,
    /// Explicit scales; exclusive with the octave pair.
    #[serde(default)]
    pub scales: Option<Vec<f64>>,
    #[serde(default)]
    pub base_sizes: Option<Vec<usize>>,
    #[serde(default)]
    pub octave_base_scale: Option<f64>,
    #[serde(default)]
    pub scales_per_octave: Option<usize>,
    #[serde(default)]
    pub center_offset: f64,
}

/// Why an anchor config cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnchorError {
    #[error("anchor_generator: give either `scales` or `octave_base_scale` + `scales_per_octave`")]
    Scales,
    #[error("anchor_generator: `base_sizes` has {0} entries for {1} strides")]
    BaseSizes(usize, usize),
    #[error("anchor_generator: `strides` and `ratios` must be non-empty")]
    Empty,
}

/// The generator, its base anchors computed once.
#[derive(Debug, Clone)]
pub struct AnchorGenerator {
    pub strides: Vec<usize>,
    /// `(num_levels, num_base_anchors)` base anchors centred at `center_offset · stride`.
    pub base_anchors: Vec<Vec<[f64; 4]>>,
}

impl AnchorGenerator {
    pub fn new(cfg: &AnchorGeneratorConfig) -> Result<Self, AnchorError> {
        if cfg.strides.is_empty() || cfg.ratios.is_empty() {
            return Err(AnchorError::Empty);
        }
        let scales: Vec<f64> = match (&cfg.scales, cfg.octave_base_scale, cfg.scales_per_octave) {
            (Some(s), None, None) if !s.is_empty() => s.clone(),
            (None, Some(base), Some(n)) if n > 0 => (0..n)
                .map(|i| base * 2f64.powf(i as f64 / n as f64))
                .collect(),
            _ => return Err(AnchorError::Scales),
        };
        let base_sizes = match &cfg.base_sizes {
            Some(b) if b.len() != cfg.strides.len() => {
                return Err(AnchorError::BaseSizes(b.len(), cfg.strides.len()));
            }
            Some(b) => b.clone(),
            None => cfg.strides.clone(),
        };
        let base_anchors = base_sizes
            .iter()
            .map(|&size| {
                let (w, h) = (size as f64, size as f64);
                let (xc, yc) = (cfg.center_offset * w, cfg.center_offset * h);
                let mut out = Vec::with_capacity(cfg.ratios.len() * scales.len());
                for &r in &cfg.ratios {
                    let h_ratio = r.sqrt();
                    let w_ratio = 1.0 / h_ratio;
                    for &s in &scales {
                        let (ws, hs) = (w * w_ratio * s, h * h_ratio * s);
                        out.push([xc - 0.5 * ws, yc - 0.5 * hs, xc + 0.5 * ws, yc + 0.5 * hs]);
                    }
                }
                out
            })
            .collect();
        Ok(Self {
            strides: cfg.strides.clone(),
            base_anchors,
        })
    }

    pub fn num_levels(&self) -> usize {
        self.strides.len()
    }

    /// Anchors per location (of the first level; all levels have the same count).
    pub fn num_base_anchors(&self) -> usize {
        self.base_anchors.first().map_or(0, Vec::len)
    }

    /// The anchors of level `level` on a `(h, w)` map, row order `(y, x, a)`, in f64.
    pub fn grid_anchors_f64(&self, level: usize, (h, w): (usize, usize)) -> Vec<[f64; 4]> {
        let stride = self.strides[level] as f64;
        let base = &self.base_anchors[level];
        let mut out = Vec::with_capacity(h * w * base.len());
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (x as f64 * stride, y as f64 * stride);
                out.extend(
                    base.iter()
                        .map(|b| [b[0] + sx, b[1] + sy, b[2] + sx, b[3] + sy]),
                );
            }
        }
        out
    }

    /// The anchors of level `level` in f32 (as mmdet's loss path computes them: the base
    /// anchors and shifts are float32 before the addition).
    pub fn grid_anchors(&self, level: usize, (h, w): (usize, usize)) -> Vec<Box4> {
        let stride = self.strides[level] as f32;
        let base = &self.base_anchors[level];
        let mut out = Vec::with_capacity(h * w * base.len());
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = (x as f32 * stride, y as f32 * stride);
                out.extend(base.iter().map(|b| {
                    [
                        b[0] as f32 + sx,
                        b[1] as f32 + sy,
                        b[2] as f32 + sx,
                        b[3] as f32 + sy,
                    ]
                }));
            }
        }
        out
    }

    /// Valid flags of level `level` for an image padded to `pad_hw`: locations with
    /// `y < min(ceil(pad_h / s), h)` and `x < min(ceil(pad_w / s), w)`, per anchor.
    pub fn valid_flags(
        &self,
        level: usize,
        (h, w): (usize, usize),
        (pad_h, pad_w): (usize, usize),
    ) -> Vec<bool> {
        let s = self.strides[level];
        let (vh, vw) = (pad_h.div_ceil(s).min(h), pad_w.div_ceil(s).min(w));
        let a = self.base_anchors[level].len();
        let mut out = Vec::with_capacity(h * w * a);
        for y in 0..h {
            for x in 0..w {
                out.extend(std::iter::repeat_n(y < vh && x < vw, a));
            }
        }
        out
    }

    /// The anchors of all levels of feature maps `sizes`, concatenated, and the indices of
    /// those inside the image (`AnchorHead` / `RPNHead.get_targets`): valid for the padded
    /// image, and with `allowed_border ≥ 0` also not crossing the image border by more.
    pub fn anchors_inside(
        &self,
        sizes: &[(usize, usize)],
        img_shape: (usize, usize),
        pad_shape: (usize, usize),
        allowed_border: f32,
    ) -> AnchorsInside {
        let mut anchors = Vec::new();
        let mut valid = Vec::new();
        for (l, &hw) in sizes.iter().enumerate() {
            anchors.extend(self.grid_anchors(l, hw));
            valid.extend(self.valid_flags(l, hw, pad_shape));
        }
        if allowed_border >= 0.0 {
            let (h, w) = (img_shape.0 as f32, img_shape.1 as f32);
            let b = allowed_border;
            for (v, a) in valid.iter_mut().zip(&anchors) {
                *v = *v && a[0] >= -b && a[1] >= -b && a[2] < w + b && a[3] < h + b;
            }
        }
        let inside = (0..anchors.len()).filter(|&i| valid[i]).collect();
        AnchorsInside {
            anchors,
            valid,
            inside,
        }
    }
}

/// What [`AnchorGenerator::anchors_inside`] returns.
pub struct AnchorsInside {
    /// Every anchor of every level, concatenated.
    pub anchors: Vec<Box4>,
    /// Per anchor: whether it is inside (the head's `valid_flags`).
    pub valid: Vec<bool>,
    /// The indices of the valid anchors.
    pub inside: Vec<usize>,
}
