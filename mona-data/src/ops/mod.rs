//! Pixel operations shared by the transforms: resizing with the exact arithmetic of the
//! library mmcv would call (OpenCV or Pillow), cropping and flipping.
//!
//! Transforms decide *what* geometry to apply; this module only knows *how* to move pixels,
//! for 8-bit images of any channel count (RGB images, gray label maps) and for planar floats.

mod cv2;
mod pillow;
mod planar;

use image::{ImageBuffer, Pixel};

pub use planar::{crop_planar, flip_planar};

/// mmcv's `interpolation` argument (the subset the pipelines use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Nearest,
    Bilinear,
}

impl Interpolation {
    /// Parses mmcv's name; `None` for names mmcv knows but we do not implement.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "nearest" => Some(Interpolation::Nearest),
            "bilinear" => Some(Interpolation::Bilinear),
            _ => None,
        }
    }

    /// The accepted names, for error messages.
    pub const NAMES: &'static [&'static str] = &["nearest", "bilinear"];
}

/// mmcv's `backend` argument: which library's arithmetic to reproduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Backend {
    #[default]
    Cv2,
    Pillow,
}

impl Backend {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "cv2" => Some(Backend::Cv2),
            "pillow" => Some(Backend::Pillow),
            _ => None,
        }
    }

    /// The accepted names, for error messages.
    pub const NAMES: &'static [&'static str] = &["cv2", "pillow"];
}

/// Resizes an 8-bit image to `width × height` (both non-zero, as is the source).
pub fn resize<P>(
    img: &ImageBuffer<P, Vec<u8>>,
    width: u32,
    height: u32,
    interpolation: Interpolation,
    backend: Backend,
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8>,
{
    let cn = usize::from(P::CHANNEL_COUNT);
    let src = (img.width() as usize, img.height() as usize);
    let dst = (width as usize, height as usize);
    let raw = img.as_raw();
    let data = match (backend, interpolation) {
        (Backend::Cv2, Interpolation::Bilinear) => cv2::resize_linear(raw, src, cn, dst),
        (Backend::Cv2, Interpolation::Nearest) => cv2::resize_nearest(raw, src, cn, dst),
        (Backend::Pillow, Interpolation::Bilinear) => pillow::resize_bilinear(raw, src, cn, dst),
        (Backend::Pillow, Interpolation::Nearest) => pillow::resize_nearest(raw, src, cn, dst),
    };
    match ImageBuffer::from_raw(width, height, data) {
        Some(out) => out,
        // The resizers always return width * height * cn values.
        None => unreachable!("resize produced a buffer of the wrong length"),
    }
}

/// The `width × height` window at `(x, y)` (inside the image, as callers guarantee).
pub fn crop<P>(
    img: &ImageBuffer<P, Vec<u8>>,
    x: u32,
    y: u32,
    width: u32,
    height: u32,
) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    image::imageops::crop_imm(img, x, y, width, height).to_image()
}

/// Mirrors an 8-bit image; `horizontal` reverses columns, otherwise rows.
pub fn flip<P>(img: &ImageBuffer<P, Vec<u8>>, horizontal: bool) -> ImageBuffer<P, Vec<u8>>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if horizontal {
        image::imageops::flip_horizontal(img)
    } else {
        image::imageops::flip_vertical(img)
    }
}

/// Nearest-neighbour gather shared by the OpenCV and Pillow resizes, which differ only in how
/// they map output to source coordinates: output pixel `(x, y)` copies source pixel
/// `(xs[x], ys[y])` of an interleaved `cn`-channel image `sw` pixels wide.
fn gather_pixels(src: &[u8], sw: usize, cn: usize, xs: &[usize], ys: &[usize]) -> Vec<u8> {
    let mut dst = Vec::with_capacity(xs.len() * ys.len() * cn);
    for &y in ys {
        let row = &src[y * sw * cn..(y + 1) * sw * cn];
        for &x in xs {
            dst.extend_from_slice(&row[x * cn..(x + 1) * cn]);
        }
    }
    dst
}
