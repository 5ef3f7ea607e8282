//! Applying one crop / resize / flip to everything in a sample that has geometry: the image,
//! the segmentation map (always nearest), the boxes and the instance masks (mmdet
//! `BitmapMasks`: nearest, always at the image's new size). Transforms decide the geometry;
//! this keeps the annotations aligned with the image in one place.

use crate::error::DataError;
use crate::ops::{self, Backend, Interpolation};
use crate::results::{FlipDirection, Image, Results};

/// A window in pixels of the current image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// Crops the image, `gt_seg` and `gt_masks` to `win` (which lies inside the image).
pub(crate) fn crop(
    mut r: Results,
    win: Window,
    transform: &'static str,
) -> Result<Results, DataError> {
    r.check_seg_size(transform)?;
    r.check_mask_sizes(transform)?;
    if !r.gt_bboxes.is_empty() || !r.gt_bboxes_ignore.is_empty() {
        // Which boxes survive a crop is a per-transform rule (mmdet filters, clips, or keeps
        // them); the detection transforms define it. Refuse rather than guess.
        return Err(r.error(
            transform,
            "cropping samples with gt_bboxes is not supported by this transform",
        ));
    }
    let [h, w, _] = r.img.shape();
    if win.width == 0 || win.height == 0 || win.x + win.width > w || win.y + win.height > h {
        return Err(r.error(
            transform,
            format!(
                "crop window {}x{} at ({}, {}) does not fit the {w}x{h} image",
                win.width, win.height, win.x, win.y
            ),
        ));
    }
    let (x, y, cw, ch) = (
        win.x as u32,
        win.y as u32,
        win.width as u32,
        win.height as u32,
    );
    r.img = match std::mem::take(&mut r.img) {
        Image::U8(img) => Image::U8(ops::crop(&img, x, y, cw, ch)),
        Image::F32 {
            data,
            channels,
            height,
            width,
        } => Image::F32 {
            data: ops::crop_planar(
                &data,
                (channels, height, width),
                (win.x, win.y),
                (win.width, win.height),
            ),
            channels,
            height: win.height,
            width: win.width,
        },
        Image::NotLoaded => return Err(r.error(transform, "no image: put LoadImageFromFile first")),
    };
    if let Some(seg) = &r.gt_seg {
        r.gt_seg = Some(ops::crop(seg, x, y, cw, ch));
    }
    // mmdet `BitmapMasks.crop`: the same window. Only reachable without boxes (see above), so
    // this is an empty list unless a caller took the boxes out first.
    if let Some(masks) = r.gt_masks.as_mut() {
        for m in masks.iter_mut() {
            *m = ops::crop(m, x, y, cw, ch);
        }
    }
    r.img_shape = r.img.shape();
    Ok(r)
}

/// Resizes the 8-bit image to `width × height` with `interpolation`, `gt_seg` with nearest
/// (same backend), `gt_masks` with nearest (OpenCV), and scales the boxes (clipped to the new
/// image, mmdet's default).
pub(crate) fn resize(
    mut r: Results,
    (width, height): (usize, usize),
    interpolation: Interpolation,
    backend: Backend,
    transform: &'static str,
) -> Result<Results, DataError> {
    r.check_seg_size(transform)?;
    r.check_mask_sizes(transform)?;
    let img = r.take_u8(transform)?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    if width == 0 || height == 0 || w == 0 || h == 0 {
        r.img = Image::U8(img);
        return Err(r.error(
            transform,
            format!("cannot resize a {w}x{h} image to {width}x{height}"),
        ));
    }
    let (nw, nh) = (width as u32, height as u32);
    r.img = Image::U8(ops::resize(&img, nw, nh, interpolation, backend));
    if let Some(seg) = &r.gt_seg {
        r.gt_seg = Some(ops::resize(seg, nw, nh, Interpolation::Nearest, backend));
    }
    // mmdet 2.x `Resize._resize_masks`: `BitmapMasks.rescale(scale)` (keep_ratio) or
    // `.resize(img_shape)`, both `interpolation='nearest'` with mmcv's default (cv2) backend
    // whatever the image's `backend`; `rescale` computes the same size as the image's
    // `imrescale`, so the masks always come out at the image's new size.
    if let Some(masks) = r.gt_masks.as_mut() {
        for m in masks.iter_mut() {
            *m = ops::resize(m, nw, nh, Interpolation::Nearest, Backend::Cv2);
        }
    }
    let (sx, sy) = (width as f32 / w as f32, height as f32 / h as f32);
    r.scale_factor = Some([sx, sy, sx, sy]);
    for b in r.gt_bboxes.iter_mut().chain(r.gt_bboxes_ignore.iter_mut()) {
        *b = [
            (b[0] * sx).clamp(0.0, width as f32),
            (b[1] * sy).clamp(0.0, height as f32),
            (b[2] * sx).clamp(0.0, width as f32),
            (b[3] * sy).clamp(0.0, height as f32),
        ];
    }
    r.img_shape = r.img.shape();
    Ok(r)
}

/// Mirrors the image, `gt_seg`, `gt_masks` and the boxes, and records the flip.
pub(crate) fn flip(
    mut r: Results,
    direction: FlipDirection,
    transform: &'static str,
) -> Result<Results, DataError> {
    r.check_seg_size(transform)?;
    r.check_mask_sizes(transform)?;
    let horizontal = direction == FlipDirection::Horizontal;
    let [h, w, _] = r.img.shape();
    match &mut r.img {
        Image::U8(img) => *img = ops::flip(img, horizontal),
        Image::F32 {
            data,
            channels,
            height,
            width,
        } => ops::flip_planar(data, (*channels, *height, *width), horizontal),
        Image::NotLoaded => return Err(r.error(transform, "no image: put LoadImageFromFile first")),
    }
    if let Some(seg) = &r.gt_seg {
        r.gt_seg = Some(ops::flip(seg, horizontal));
    }
    // mmdet `BitmapMasks.flip`: `mmcv.imflip` of each mask along the same axis.
    if let Some(masks) = r.gt_masks.as_mut() {
        for m in masks.iter_mut() {
            *m = ops::flip(m, horizontal);
        }
    }
    // mmdet 2.x `bbox_flip`: x1' = w - x2, x2' = w - x1 (no -1: boxes are continuous).
    let (w, h) = (w as f32, h as f32);
    for b in r.gt_bboxes.iter_mut().chain(r.gt_bboxes_ignore.iter_mut()) {
        *b = if horizontal {
            [w - b[2], b[1], w - b[0], b[3]]
        } else {
            [b[0], h - b[3], b[2], h - b[1]]
        };
    }
    r.flip = true;
    r.flip_direction = Some(direction);
    Ok(r)
}
