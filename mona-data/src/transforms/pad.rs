//! `Pad` (mmseg / mmdet): pads the image at the bottom and right to `size` (`[h, w]`) or to a
//! multiple of `size_divisor`, with `pad_val`; `gt_seg` with `seg_pad_val` (255 = ignore);
//! instance masks (`gt_masks`) with 0 to the same padded size (mmdet 2.x `Pad._pad_masks`:
//! `BitmapMasks.pad(pad_shape, pad_val=0)`).

use image::{GrayImage, Luma, Rgb, RgbImage};
use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::{Image, Results};
use crate::rng::DataRng;

#[derive(Clone, Debug)]
pub struct Pad {
    pub size: Option<(usize, usize)>,
    pub size_divisor: Option<usize>,
    pub pad_val: f32,
    pub seg_pad_val: u8,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default)]
    size: Option<[usize; 2]>,
    #[serde(default)]
    size_divisor: Option<usize>,
    #[serde(default)]
    pad_val: f32,
    #[serde(default = "ignore")]
    seg_pad_val: u8,
}

fn ignore() -> u8 {
    255
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    if args.size.is_some() == args.size_divisor.is_some() {
        return Err(BuildError::invalid(
            node,
            Some("size"),
            "exactly one of size and size_divisor must be set",
        ));
    }
    if args.size_divisor == Some(0) {
        return Err(BuildError::invalid(
            node,
            Some("size_divisor"),
            "must be positive",
        ));
    }
    Ok(Box::new(Pad {
        size: args.size.map(|s| (s[0], s[1])),
        size_divisor: args.size_divisor,
        pad_val: args.pad_val,
        seg_pad_val: args.seg_pad_val,
    }))
}

inventory::submit! { TransformEntry::new("Pad", build) }

impl Pad {
    /// The padded `(height, width)` of an `h × w` image.
    pub fn target(&self, h: usize, w: usize) -> (usize, usize) {
        match (self.size, self.size_divisor) {
            (Some((ph, pw)), _) => (ph.max(h), pw.max(w)),
            (None, Some(d)) => (h.div_ceil(d) * d, w.div_ceil(d) * d),
            (None, None) => (h, w),
        }
    }
}

impl Transform for Pad {
    fn apply(&self, mut r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        r.check_seg_size(self.name())?;
        r.check_mask_sizes(self.name())?;
        let [h, w, _] = r.img.shape();
        let (th, tw) = self.target(h, w);
        if (th, tw) == (h, w) {
            r.pad_shape = Some(r.img.shape());
            return Ok(r);
        }
        r.img = match std::mem::take(&mut r.img) {
            Image::U8(img) => {
                let v = self.pad_val.clamp(0.0, 255.0) as u8;
                let mut out = RgbImage::from_pixel(tw as u32, th as u32, Rgb([v, v, v]));
                image::imageops::replace(&mut out, &img, 0, 0);
                Image::U8(out)
            }
            Image::F32 {
                data,
                channels,
                height,
                width,
            } => {
                let mut out = vec![self.pad_val; channels * th * tw];
                for c in 0..channels {
                    for y in 0..height {
                        let src = &data[(c * height + y) * width..(c * height + y + 1) * width];
                        out[(c * th + y) * tw..(c * th + y) * tw + width].copy_from_slice(src);
                    }
                }
                Image::F32 {
                    data: out,
                    channels,
                    height: th,
                    width: tw,
                }
            }
            Image::NotLoaded => return Err(r.error(self.name(), "no image to pad")),
        };
        if let Some(seg) = &r.gt_seg {
            let mut out = GrayImage::from_pixel(tw as u32, th as u32, Luma([self.seg_pad_val]));
            image::imageops::replace(&mut out, seg, 0, 0);
            r.gt_seg = Some(out);
        }
        if let Some(masks) = r.gt_masks.as_mut() {
            for m in masks.iter_mut() {
                let mut out = GrayImage::new(tw as u32, th as u32);
                image::imageops::replace(&mut out, m, 0, 0);
                *m = out;
            }
        }
        // mmdet / mmseg: `img_shape` stays the unpadded size, `pad_shape` is the padded one.
        r.pad_shape = Some(r.img.shape());
        Ok(r)
    }

    fn name(&self) -> &'static str {
        "Pad"
    }
}
