//! `PhotoMetricDistortion` (mmseg): random brightness, contrast (before or after the HSV
//! steps), saturation and hue, each applied with probability 0.5, on the 8-bit RGB image
//! (mmseg works on BGR; every step is per-pixel and channel-symmetric except hue, which is
//! computed in HSV, so the channel order does not matter).

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::{Image, Results};
use crate::rng::DataRng;

#[derive(Clone, Debug)]
pub struct PhotoMetricDistortion {
    pub brightness_delta: f32,
    pub contrast_range: (f32, f32),
    pub saturation_range: (f32, f32),
    pub hue_delta: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default = "b32")]
    brightness_delta: f32,
    #[serde(default = "range")]
    contrast_range: [f32; 2],
    #[serde(default = "range")]
    saturation_range: [f32; 2],
    #[serde(default = "h18")]
    hue_delta: i32,
}

fn b32() -> f32 {
    32.0
}
fn range() -> [f32; 2] {
    [0.5, 1.5]
}
fn h18() -> i32 {
    18
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let a: Args = node.extract()?;
    Ok(Box::new(PhotoMetricDistortion {
        brightness_delta: a.brightness_delta,
        contrast_range: (a.contrast_range[0], a.contrast_range[1]),
        saturation_range: (a.saturation_range[0], a.saturation_range[1]),
        hue_delta: a.hue_delta,
    }))
}

inventory::submit! { TransformEntry::new("PhotoMetricDistortion", build) }

/// OpenCV's 8-bit RGB → HSV (H in [0, 180)).
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> (f32, f32, f32) {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let v = max;
    let s = if max > 0.0 {
        (max - min) / max * 255.0
    } else {
        0.0
    };
    let d = max - min;
    let mut h = if d == 0.0 {
        0.0
    } else if max == r {
        60.0 * (g - b) / d
    } else if max == g {
        120.0 + 60.0 * (b - r) / d
    } else {
        240.0 + 60.0 * (r - g) / d
    };
    if h < 0.0 {
        h += 360.0;
    }
    ((h / 2.0).round(), s.round(), v)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> (f32, f32, f32) {
    let h = h * 2.0;
    let s = s / 255.0;
    let c = v * s;
    let hp = (h / 60.0) % 6.0;
    let x = c * (1.0 - ((hp % 2.0) - 1.0).abs());
    let (r, g, b) = match hp as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    (r + m, g + m, b + m)
}

impl Transform for PhotoMetricDistortion {
    fn apply(&self, mut r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        let mut img = r.take_u8(self.name())?;
        let mut px: Vec<f32> = img.as_raw().iter().map(|&v| v as f32).collect();
        let clip = |v: &mut [f32]| v.iter_mut().for_each(|x| *x = x.clamp(0.0, 255.0));
        // brightness
        if rng.random_range(0..2) == 1 {
            let d = rng.random_range(-self.brightness_delta..self.brightness_delta);
            px.iter_mut().for_each(|x| *x += d);
            clip(&mut px);
        }
        let contrast_first = rng.random_range(0..2) == 1;
        let contrast = |px: &mut Vec<f32>, rng: &mut DataRng| {
            if rng.random_range(0..2) == 1 {
                let a = rng.random_range(self.contrast_range.0..self.contrast_range.1);
                px.iter_mut().for_each(|x| *x = (*x * a).clamp(0.0, 255.0));
            }
        };
        if contrast_first {
            contrast(&mut px, rng);
        }
        let sat = (rng.random_range(0..2) == 1)
            .then(|| rng.random_range(self.saturation_range.0..self.saturation_range.1));
        let hue = (rng.random_range(0..2) == 1)
            .then(|| rng.random_range(-self.hue_delta..self.hue_delta));
        if sat.is_some() || hue.is_some() {
            for p in px.chunks_exact_mut(3) {
                let (mut h, mut s, v) = rgb_to_hsv(p[0], p[1], p[2]);
                if let Some(a) = sat {
                    s = (s * a).clamp(0.0, 255.0);
                }
                if let Some(d) = hue {
                    h = (h + d as f32).rem_euclid(180.0);
                }
                let (r_, g_, b_) = hsv_to_rgb(h, s, v);
                p[0] = r_;
                p[1] = g_;
                p[2] = b_;
            }
        }
        if !contrast_first {
            contrast(&mut px, rng);
        }
        for (dst, src) in img.iter_mut().zip(&px) {
            *dst = src.round().clamp(0.0, 255.0) as u8;
        }
        r.img = Image::U8(img);
        Ok(r)
    }

    fn name(&self) -> &'static str {
        "PhotoMetricDistortion"
    }
}
