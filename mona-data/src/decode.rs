//! Image decoding with mmcv's `color` mode (`cv2.IMREAD_COLOR`).
//!
//! What `IMREAD_COLOR` does, and so what we do:
//! - the format is recognised from the file's content, not its extension;
//! - the EXIF orientation is applied (`color` is not `color_ignore_orientation`);
//! - grayscale is replicated to three channels, alpha is dropped (not composited);
//! - 16-bit samples keep their high byte (libpng's `png_set_strip_16`, i.e. `v >> 8`).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, Pixel, Rgb, RgbImage};

use crate::error::DataError;

/// Reads the image at `path` as 8-bit RGB. A missing file or undecodable content is an error
/// naming the path.
pub fn read_image(path: &Path) -> Result<RgbImage, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::ImageRead {
        path: path.to_path_buf(),
        source,
    })?;
    decode_image(&bytes).map_err(|source| DataError::ImageDecode {
        path: path.to_path_buf(),
        source,
    })
}

/// Decodes encoded image bytes as 8-bit RGB (see the module docs for the conversions).
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, image::ImageError> {
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format()?;
    let mut decoder = reader.into_decoder()?;
    // A file whose EXIF block is damaged still decodes; cv2 then ignores the orientation too.
    let orientation = decoder.orientation().ok();
    let mut img = DynamicImage::from_decoder(decoder)?;
    if let Some(orientation) = orientation {
        img.apply_orientation(orientation);
    }
    Ok(to_rgb8(img))
}

/// mmcv `color` conversion of any decoded image to 8-bit RGB.
fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageLuma16(g) => map16(&g, |p| {
            let v = high_byte(p.0[0]);
            [v, v, v]
        }),
        DynamicImage::ImageLumaA16(g) => map16(&g, |p| {
            let v = high_byte(p.0[0]);
            [v, v, v]
        }),
        DynamicImage::ImageRgb16(c) => map16(&c, |p| p.0.map(high_byte)),
        DynamicImage::ImageRgba16(c) => map16(&c, |p| {
            let [r, g, b, _] = p.0;
            [high_byte(r), high_byte(g), high_byte(b)]
        }),
        // 8-bit gray (replicated) and RGBA / gray-alpha (alpha dropped, not blended) are what
        // `image`'s own conversion does; float images do not come out of PNG/JPEG/BMP.
        other => other.to_rgb8(),
    }
}

fn high_byte(v: u16) -> u8 {
    (v >> 8) as u8
}

fn map16<P>(img: &image::ImageBuffer<P, Vec<u16>>, f: impl Fn(&P) -> [u8; 3]) -> RgbImage
where
    P: Pixel<Subpixel = u16>,
{
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        Rgb(f(img.get_pixel(x, y)))
    })
}
