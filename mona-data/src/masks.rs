//! Instance-mask annotations as stored in a COCO file, and their rasterisation into the 0/1
//! bitmaps of `Results::gt_masks` (mmdet 2.x `BitmapMasks`).
//!
//! mmdet keeps the raw `segmentation` of every kept (non-crowd) box in `ann_info['masks']` and
//! turns it into a bitmap only in `LoadAnnotations(with_mask=True)`, with `_poly2mask`:
//!
//! ```python
//! if isinstance(mask_ann, list):          # polygons: one object, several parts
//!     rle = maskUtils.merge(maskUtils.frPyObjects(mask_ann, img_h, img_w))
//! elif isinstance(mask_ann['counts'], list):   # uncompressed RLE
//!     rle = maskUtils.frPyObjects(mask_ann, img_h, img_w)
//! else:                                    # compressed RLE
//!     rle = mask_ann
//! mask = maskUtils.decode(rle)
//! ```
//!
//! The dataset reader does the same split ([`MaskAnnotation`]), decoding compressed counts to
//! the plain run list at read time (pycocotools' `rleFrString`), so that a corrupt string is
//! reported with its file and annotation id instead of in the middle of training.
//! [`rasterize`] then follows `_poly2mask` with `hotcoco`, a port of pycocotools' `maskApi.c`
//! (same scan-line polygon fill, same merge), so the pixels are pycocotools' own.
//!
//! RLEs are column-major (pixel `(x, y)` at run position `y + height * x`, Fortran order as in
//! pycocotools); [`rasterize`] transposes to the row-major [`GrayImage`] the pipeline uses.

use image::GrayImage;

/// One instance's `segmentation`, as stored.
#[derive(Debug, Clone, PartialEq)]
pub enum MaskAnnotation {
    /// Polygon parts `[x1, y1, x2, y2, ...]` in pixels, merged (union) into one mask.
    Polygons(Vec<Vec<f64>>),
    /// A run-length encoding, column-major, starting with a run of zeros (compressed strings
    /// already decoded to this list).
    Rle {
        height: usize,
        width: usize,
        counts: Vec<u32>,
    },
}

/// The raw masks of one image (mmdet's `ann_info['masks']` with `img_info`'s size): one entry
/// per `gt_bboxes` entry, `None` where the annotation has no `segmentation`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaskAnnotations {
    /// The image size the annotation file gives (`img_info['height']`, `['width']`): mmdet
    /// rasterises at this size.
    pub height: usize,
    pub width: usize,
    pub instances: Vec<Option<MaskAnnotation>>,
}

/// Why a mask annotation cannot be rasterised.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MaskError {
    /// An RLE whose `size` is not the image's.
    #[error(
        "RLE size [{rle_height}, {rle_width}] is not the image's [height, width] = [{height}, {width}]"
    )]
    SizeMismatch {
        rle_height: usize,
        rle_width: usize,
        height: usize,
        width: usize,
    },
    /// An RLE whose runs do not cover the image exactly.
    #[error("RLE counts cover {total} pixels, the image has {height} x {width} = {pixels}")]
    Coverage {
        total: u128,
        height: usize,
        width: usize,
        pixels: u128,
    },
    /// The image is too large for 32-bit RLE counts, or another rejection by the rasteriser.
    #[error("{0}")]
    Rasterizer(String),
}

/// The `height × width` 0/1 bitmap of `ann`, exactly as mmdet's `_poly2mask` computes it.
///
/// Polygons: pycocotools `frPyObjects` on each part, `merge` (union), `decode`. An empty part
/// list (the reader drops parts with fewer than 3 points or an odd number of coordinates, as
/// mmdet's `process_polygons` does) gives an all-zero mask; pycocotools would raise on it.
pub fn rasterize(
    ann: &MaskAnnotation,
    height: usize,
    width: usize,
) -> Result<GrayImage, MaskError> {
    let dims =
        |v: usize| u32::try_from(v).map_err(|_| MaskError::Rasterizer(too_large(height, width)));
    let (h, w) = (dims(height)?, dims(width)?);
    let rle = match ann {
        MaskAnnotation::Polygons(parts) => hotcoco::mask::fr_polys(parts, h, w)
            .map_err(|e| MaskError::Rasterizer(e.to_string()))?,
        MaskAnnotation::Rle {
            height: rh,
            width: rw,
            counts,
        } => {
            if (*rh, *rw) != (height, width) {
                return Err(MaskError::SizeMismatch {
                    rle_height: *rh,
                    rle_width: *rw,
                    height,
                    width,
                });
            }
            let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
            let pixels = height as u128 * width as u128;
            if total != pixels {
                return Err(MaskError::Coverage {
                    total,
                    height,
                    width,
                    pixels,
                });
            }
            hotcoco::Rle {
                h,
                w,
                counts: counts.clone(),
            }
        }
    };
    let column_major = hotcoco::mask::decode(&rle);
    Ok(transpose(&column_major, height, width))
}

fn too_large(height: usize, width: usize) -> String {
    format!("a {width}x{height} mask is too large for 32-bit RLE counts")
}

/// Column-major (`y + height * x`) to a row-major [`GrayImage`] (`y * width + x`).
fn transpose(column_major: &[u8], height: usize, width: usize) -> GrayImage {
    let mut rows = vec![0u8; height * width];
    for (x, column) in column_major
        .chunks_exact(height.max(1))
        .enumerate()
        .take(width)
    {
        for (y, &v) in column.iter().enumerate() {
            rows[y * width + x] = v;
        }
    }
    match GrayImage::from_raw(width as u32, height as u32, rows) {
        Some(img) => img,
        // `rows` has exactly width * height bytes.
        None => unreachable!("mask buffer of the wrong length"),
    }
}

/// The tight box `[x1, y1, x2, y2]` (x2, y2 exclusive) of the non-zero pixels of `mask`, or
/// all zeros for an empty mask (mmdet `BitmapMasks.get_bboxes`).
pub fn mask_bbox(mask: &GrayImage) -> [f32; 4] {
    let (mut x1, mut y1, mut x2, mut y2) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[0] != 0 {
            x1 = x1.min(x);
            y1 = y1.min(y);
            x2 = x2.max(x + 1);
            y2 = y2.max(y + 1);
        }
    }
    if x2 == 0 {
        return [0.0; 4];
    }
    [x1 as f32, y1 as f32, x2 as f32, y2 as f32]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(m: &GrayImage) -> Vec<(u32, u32)> {
        m.enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] != 0)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    #[test]
    fn rectangle_polygon_covers_the_pixels_pycocotools_fills() {
        // The box x in [1, 4), y in [0, 2) as a polygon on a 5 wide x 3 high image:
        // pycocotools fills pixels x = 1..=3, y = 0..=1 (area 6 = w * h, as frBbox).
        let poly = MaskAnnotation::Polygons(vec![vec![1.0, 0.0, 4.0, 0.0, 4.0, 2.0, 1.0, 2.0]]);
        let m = rasterize(&poly, 3, 5).expect("rasterize");
        assert_eq!((m.width(), m.height()), (5, 3));
        assert_eq!(
            ones(&m),
            vec![(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1)]
        );
        assert_eq!(mask_bbox(&m), [1.0, 0.0, 4.0, 2.0]);
        // two parts are merged (union); an empty part list is an empty mask
        let two = MaskAnnotation::Polygons(vec![
            vec![0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
            vec![4.0, 2.0, 5.0, 2.0, 5.0, 3.0, 4.0, 3.0],
        ]);
        assert_eq!(
            ones(&rasterize(&two, 3, 5).expect("two")),
            vec![(0, 0), (4, 2)]
        );
        let empty = rasterize(&MaskAnnotation::Polygons(vec![]), 3, 5).expect("empty");
        assert!(ones(&empty).is_empty());
        assert_eq!(mask_bbox(&empty), [0.0; 4]);
    }

    #[test]
    fn rle_is_column_major() {
        // 3 high x 4 wide, counts [1, 2, 9]: column-major positions 1 and 2 are set, i.e.
        // (x, y) = (0, 1) and (0, 2) - the first column, not the first row.
        let rle = MaskAnnotation::Rle {
            height: 3,
            width: 4,
            counts: vec![1, 2, 9],
        };
        let m = rasterize(&rle, 3, 4).expect("rasterize");
        assert_eq!((m.width(), m.height()), (4, 3));
        assert_eq!(ones(&m), vec![(0, 1), (0, 2)]);
        // a run spanning two columns: positions 2..5 = (0, 2), (1, 0), (1, 1)
        let rle = MaskAnnotation::Rle {
            height: 3,
            width: 4,
            counts: vec![2, 3, 7],
        };
        assert_eq!(
            ones(&rasterize(&rle, 3, 4).expect("rasterize")),
            vec![(1, 0), (1, 1), (0, 2)]
        );
    }

    #[test]
    fn bad_rles_are_errors() {
        let rle = MaskAnnotation::Rle {
            height: 4,
            width: 3,
            counts: vec![12],
        };
        assert_eq!(
            rasterize(&rle, 3, 4).expect_err("size").to_string(),
            "RLE size [4, 3] is not the image's [height, width] = [3, 4]"
        );
        let rle = MaskAnnotation::Rle {
            height: 3,
            width: 4,
            counts: vec![1, 2],
        };
        assert_eq!(
            rasterize(&rle, 3, 4).expect_err("coverage").to_string(),
            "RLE counts cover 3 pixels, the image has 3 x 4 = 12"
        );
    }
}
