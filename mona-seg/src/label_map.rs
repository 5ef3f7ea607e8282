//! Reading a segmentation label map as mmseg does (`LoadAnnotations` decodes it with Pillow,
//! `flag='unchanged'`): an 8-bit grayscale PNG gives its values, and a palette (P-mode) PNG,
//! the usual format of VOC and Cityscapes-style label maps, gives its palette *indices*.
//! (The `image` crate expands a palette to RGB colours, which are no class indices.) Any
//! other mode is refused with its name.

use std::io::Cursor;
use std::path::Path;

use image::GrayImage;
use mona_data::DataError;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The class value of every pixel of the label map in `bytes` (read from `path`).
pub fn decode_label_map(bytes: &[u8], path: &Path) -> Result<GrayImage, DataError> {
    let refuse = |mode: String| DataError::Transform {
        path: path.to_path_buf(),
        transform: "LoadAnnotations",
        message: format!(
            "label maps must be 8-bit grayscale (L) or palette (P) PNGs, found {mode}"
        ),
    };
    if bytes.starts_with(PNG_SIGNATURE) {
        let decode_err = |e: png::DecodingError| DataError::Transform {
            path: path.to_path_buf(),
            transform: "LoadAnnotations",
            message: format!("cannot decode the PNG: {e}"),
        };
        let mut reader = png::Decoder::new(Cursor::new(bytes))
            .read_info()
            .map_err(decode_err)?;
        let (color, depth) = reader.output_color_type();
        let bits = depth as u8;
        match color {
            png::ColorType::Indexed | png::ColorType::Grayscale if bits <= 8 => {}
            other => return Err(refuse(png_mode(other, bits))),
        }
        if color == png::ColorType::Grayscale && bits < 8 {
            // Values of a 1/2/4-bit grayscale PNG mean levels, not classes.
            return Err(refuse(png_mode(color, bits)));
        }
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| refuse("a PNG too large to decode".into()))?;
        let mut buf = vec![0u8; size];
        let info = reader.next_frame(&mut buf).map_err(decode_err)?;
        let (w, h) = (info.width as usize, info.height as usize);
        let mut values = Vec::with_capacity(w * h);
        let per_byte = 8 / bits as usize;
        let mask = ((1u16 << bits) - 1) as u8;
        for row in buf.chunks(info.line_size).take(h) {
            for x in 0..w {
                // Packed indices (1, 2 or 4 bits) come most significant first.
                let byte = row[x / per_byte];
                let shift = 8 - bits as usize * (x % per_byte + 1);
                values.push((byte >> shift) & mask);
            }
        }
        return GrayImage::from_raw(w as u32, h as u32, values)
            .ok_or_else(|| refuse("a PNG whose data does not fill its size".into()));
    }
    let img = image::load_from_memory(bytes).map_err(|source| DataError::ImageDecode {
        path: path.to_path_buf(),
        source,
    })?;
    match img {
        image::DynamicImage::ImageLuma8(g) => Ok(g),
        other => Err(refuse(format!("{:?} (not a PNG)", other.color()))),
    }
}

/// Pillow-style name of a PNG colour mode.
fn png_mode(color: png::ColorType, bits: u8) -> String {
    let name = match color {
        png::ColorType::Grayscale => "L (grayscale)",
        png::ColorType::Rgb => "RGB",
        png::ColorType::Indexed => "P (palette)",
        png::ColorType::GrayscaleAlpha => "LA (grayscale with alpha)",
        png::ColorType::Rgba => "RGBA",
    };
    format!("{name}, {bits}-bit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(color: png::ColorType, depth: png::BitDepth, w: u32, h: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, w, h);
            enc.set_color(color);
            enc.set_depth(depth);
            if color == png::ColorType::Indexed {
                // A palette whose colours are unrelated to the indices.
                let palette: Vec<u8> = (0..16u8)
                    .flat_map(|i| [200 - i, 7 * i, 255 - 9 * i])
                    .collect();
                enc.set_palette(palette);
            }
            let mut writer = enc.write_header().unwrap();
            writer.write_image_data(data).unwrap();
        }
        out
    }

    #[test]
    fn palette_pngs_give_their_indices() {
        let p = Path::new("ann/a.png");
        let bytes = png(
            png::ColorType::Indexed,
            png::BitDepth::Eight,
            3,
            2,
            &[0, 1, 2, 3, 15, 4],
        );
        let map = decode_label_map(&bytes, p).unwrap();
        assert_eq!(map.as_raw(), &vec![0, 1, 2, 3, 15, 4]);
        // 4-bit palette: two pixels per byte, high nibble first; rows padded to a byte.
        let bytes = png(
            png::ColorType::Indexed,
            png::BitDepth::Four,
            3,
            2,
            &[0x12, 0x30, 0xF0, 0x50],
        );
        let map = decode_label_map(&bytes, p).unwrap();
        assert_eq!(map.as_raw(), &vec![1, 2, 3, 15, 0, 5]);
    }

    #[test]
    fn grayscale_pngs_give_their_values_and_other_modes_are_named() {
        let p = Path::new("ann/a.png");
        let bytes = png(
            png::ColorType::Grayscale,
            png::BitDepth::Eight,
            2,
            1,
            &[7, 255],
        );
        assert_eq!(decode_label_map(&bytes, p).unwrap().as_raw(), &vec![7, 255]);
        let rgb = png(png::ColorType::Rgb, png::BitDepth::Eight, 1, 1, &[1, 2, 3]);
        assert_eq!(
            decode_label_map(&rgb, p).unwrap_err().to_string(),
            "ann/a.png: LoadAnnotations: label maps must be 8-bit grayscale (L) or palette (P) PNGs, found RGB, 8-bit"
        );
        let gray16 = png(
            png::ColorType::Grayscale,
            png::BitDepth::Sixteen,
            1,
            1,
            &[0, 1],
        );
        assert_eq!(
            decode_label_map(&gray16, p).unwrap_err().to_string(),
            "ann/a.png: LoadAnnotations: label maps must be 8-bit grayscale (L) or palette (P) PNGs, found L (grayscale), 16-bit"
        );
    }
}
