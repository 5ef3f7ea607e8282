//! COCO json annotations (mmdet 2.x `CocoDataset`): boxes, polygon and RLE masks.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::{DatasetError, DetAnnotation};

/// A COCO `images` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CocoImage {
    pub id: u64,
    #[serde(default)]
    pub file_name: String,
    pub width: usize,
    pub height: usize,
}

/// A COCO `categories` entry.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct CocoCategory {
    pub id: u64,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CocoAnn {
    id: u64,
    image_id: u64,
    category_id: u64,
    bbox: [f64; 4],
    /// Required: mmdet reads `ann['area']` (a KeyError without it); defaulting it to 0
    /// would silently drop every box of such a file through the `area <= 0` rule.
    area: f64,
    #[serde(default)]
    iscrowd: u8,
    #[serde(default)]
    ignore: bool,
    #[serde(default)]
    segmentation: Option<serde_json::Value>,
}

/// The top level, elements kept as values so that a bad element is reported by its index and
/// id rather than by serde's line / column in a one-line file.
#[derive(Debug, Clone, Deserialize)]
struct CocoFile {
    images: Vec<serde_json::Value>,
    #[serde(default)]
    annotations: Vec<serde_json::Value>,
    categories: Vec<serde_json::Value>,
}

/// The mask of a COCO annotation (`segmentation`), as stored: the pipeline's
/// [`MaskAnnotation`], which `LoadAnnotations(with_mask = true)` rasterises. As read here,
/// polygon parts with fewer than 3 points or an odd number of coordinates are dropped, as
/// mmdet's `LoadAnnotations._process_polygons` does (so the list can end up empty: an empty
/// mask, which mmdet keeps too); an RLE's size equals the image's and its counts cover every
/// pixel (compressed strings are decoded).
pub use mona_data::masks::MaskAnnotation;

/// Why a `segmentation` cannot be read against its image.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MaskAnnError {
    #[error("RLE `size` must be [height, width]")]
    Size,
    #[error("RLE size [{h}, {w}] does not match the image ([height, width] = [{height}, {width}])")]
    SizeMismatch {
        h: usize,
        w: usize,
        height: usize,
        width: usize,
    },
    #[error("RLE `counts` must be non-negative integers")]
    Counts,
    #[error("RLE `counts` must be a string or a list")]
    CountsKind,
    /// A compressed `counts` string that pycocotools' decoder (hotcoco's) refuses.
    #[error("compressed RLE counts: {0}")]
    Compressed(String),
    #[error("RLE counts cover {total} pixels, the image has {h} x {w} = {pixels}")]
    Coverage {
        total: u128,
        h: usize,
        w: usize,
        pixels: u128,
    },
    #[error("segmentation[{0}] is not a list of numbers")]
    Polygon(usize),
    #[error("`segmentation` must be a list of polygons or an RLE object")]
    Kind,
}

/// A COCO RLE object (`{"size": [h, w], "counts": ...}`, compressed or not) of an image of
/// `height x width`: its size must be the image's and its runs must cover every pixel.
/// Compressed counts are decoded by hotcoco's port of pycocotools' `rleFrString`.
pub(crate) fn parse_rle(
    rle: &serde_json::Map<String, serde_json::Value>,
    height: usize,
    width: usize,
) -> Result<MaskAnnotation, MaskAnnError> {
    use serde_json::Value;
    let size: Option<Vec<usize>> = rle.get("size").and_then(Value::as_array).and_then(|a| {
        a.iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect()
    });
    let Some([h, w]) = size.and_then(|s| <[usize; 2]>::try_from(s).ok()) else {
        return Err(MaskAnnError::Size);
    };
    if (h, w) != (height, width) {
        return Err(MaskAnnError::SizeMismatch {
            h,
            w,
            height,
            width,
        });
    }
    let counts = match rle.get("counts") {
        Some(Value::String(s)) => {
            let (Ok(h32), Ok(w32)) = (u32::try_from(h), u32::try_from(w)) else {
                return Err(MaskAnnError::Size);
            };
            hotcoco::mask::rle_from_string(s, h32, w32)
                .map_err(|e| MaskAnnError::Compressed(e.to_string()))?
                .counts
        }
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| c.as_u64().and_then(|c| u32::try_from(c).ok()))
            .collect::<Option<Vec<u32>>>()
            .ok_or(MaskAnnError::Counts)?,
        _ => return Err(MaskAnnError::CountsKind),
    };
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    let pixels = h as u128 * w as u128;
    if total != pixels {
        return Err(MaskAnnError::Coverage {
            total,
            h,
            w,
            pixels,
        });
    }
    Ok(MaskAnnotation::Rle {
        height: h,
        width: w,
        counts,
    })
}

/// A COCO annotation file read like mmdet's `CocoDataset`.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoAnnotations {
    pub images: Vec<CocoImage>,
    /// Categories sorted by id; a label is the index here (mmdet's `cat2label`).
    pub categories: Vec<CocoCategory>,
    /// Per image of `images`, in order.
    pub annotations: Vec<DetAnnotation>,
    /// Per image, the `segmentation` of each kept box, aligned with `annotations[i].bboxes`
    /// (mmdet's `gt_masks_ann`; `None` where the annotation has none).
    pub masks: Vec<Vec<Option<MaskAnnotation>>>,
}

/// Validates one `segmentation` against its image (`height`, `width`).
fn parse_segmentation(
    v: &serde_json::Value,
    height: usize,
    width: usize,
) -> Result<Option<MaskAnnotation>, MaskAnnError> {
    use serde_json::Value;
    match v {
        Value::Null => Ok(None),
        Value::Array(parts) => {
            let mut kept = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let coords: Option<Vec<f64>> = part.as_array().and_then(|a| {
                    a.iter()
                        .map(|c| c.as_f64().filter(|c| c.is_finite()))
                        .collect()
                });
                let coords = coords.ok_or(MaskAnnError::Polygon(j))?;
                if coords.len() % 2 == 0 && coords.len() >= 6 {
                    kept.push(coords);
                }
            }
            Ok(Some(MaskAnnotation::Polygons(kept)))
        }
        Value::Object(rle) => parse_rle(rle, height, width).map(Some),
        _ => Err(MaskAnnError::Kind),
    }
}

/// Reads `instances_*.json`: boxes `[x, y, w, h]` → `[x1, y1, x1 + w, y1 + h]`; skipped as in
/// mmdet `_parse_ann_info`: `ignore` flags, boxes not overlapping the image, `area ≤ 0`,
/// `w < 1` or `h < 1` (so also boxes written with `x2 < x1`); nothing is clipped; crowd boxes
/// go to the ignored set. A `category_id` missing from `categories` is an error (mmdet would
/// silently skip it, hiding a corrupt file); see the module table for the other checks.
pub fn read_coco_json(path: &Path) -> Result<CocoAnnotations, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: CocoFile = serde_json::from_str(&text).map_err(|source| DatasetError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let element = |what: &str, i: usize, v: &serde_json::Value, e: serde_json::Error| {
        let id = v
            .get("id")
            .and_then(serde_json::Value::as_u64)
            .map_or(String::new(), |id| format!(" (id {id})"));
        DatasetError::Element {
            path: path.to_path_buf(),
            element: format!("{what}[{i}]{id}"),
            message: e.to_string(),
        }
    };
    let images: Vec<CocoImage> = file
        .images
        .iter()
        .enumerate()
        .map(|(i, v)| CocoImage::deserialize(v).map_err(|e| element("images", i, v, e)))
        .collect::<Result<_, _>>()?;
    if let Some((i, im)) = images
        .iter()
        .enumerate()
        .find(|(_, im)| im.file_name.is_empty())
    {
        return Err(DatasetError::Element {
            path: path.to_path_buf(),
            element: format!("images[{i}] (id {})", im.id),
            message: "has no `file_name` (the image's file under img_prefix)".into(),
        });
    }
    let mut categories: Vec<CocoCategory> = file
        .categories
        .iter()
        .enumerate()
        .map(|(i, v)| CocoCategory::deserialize(v).map_err(|e| element("categories", i, v, e)))
        .collect::<Result<_, _>>()?;
    categories.sort_by_key(|c| c.id);
    if let Some(w) = categories.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(DatasetError::Element {
            path: path.to_path_buf(),
            element: "categories".into(),
            message: format!("category id {} appears twice", w[0].id),
        });
    }
    let label: HashMap<u64, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i))
        .collect();
    let mut position: HashMap<u64, usize> = HashMap::with_capacity(images.len());
    for (i, im) in images.iter().enumerate() {
        if position.insert(im.id, i).is_some() {
            return Err(DatasetError::DuplicateImage {
                path: path.to_path_buf(),
                id: im.id,
            });
        }
    }
    let mut annotations: Vec<DetAnnotation> = images
        .iter()
        .map(|im| DetAnnotation {
            width: im.width,
            height: im.height,
            ..DetAnnotation::default()
        })
        .collect();
    let mut masks: Vec<Vec<Option<MaskAnnotation>>> = vec![Vec::new(); images.len()];
    for (k, v) in file.annotations.iter().enumerate() {
        let a = CocoAnn::deserialize(v).map_err(|e| element("annotations", k, v, e))?;
        let &i = position
            .get(&a.image_id)
            .ok_or_else(|| DatasetError::UnknownImage {
                path: path.to_path_buf(),
                id: a.id,
                image_id: a.image_id,
            })?;
        let &l = label
            .get(&a.category_id)
            .ok_or_else(|| DatasetError::UnknownCategory {
                path: path.to_path_buf(),
                id: a.id,
                category_id: a.category_id,
            })?;
        let im = &images[i];
        let segmentation = match &a.segmentation {
            Some(seg) => parse_segmentation(seg, im.height, im.width).map_err(|source| {
                DatasetError::Segmentation {
                    path: path.to_path_buf(),
                    id: a.id,
                    source,
                }
            })?,
            None => None,
        };
        // mmdet drops polygon parts of fewer than 3 points (`_process_polygons`); say so.
        if let (Some(serde_json::Value::Array(parts)), Some(MaskAnnotation::Polygons(kept))) =
            (&a.segmentation, &segmentation)
            && kept.len() < parts.len()
        {
            tracing::warn!(
                "{}: annotation {}: {} of its {} polygon part(s) have fewer than 3 points or an odd number of coordinates and are dropped (as mmdet does)",
                path.display(),
                a.id,
                parts.len() - kept.len(),
                parts.len()
            );
        }
        let [x1, y1, w, h] = a.bbox;
        if !a.bbox.iter().all(|v| v.is_finite()) {
            return Err(DatasetError::Element {
                path: path.to_path_buf(),
                element: format!("annotations[{k}] (id {})", a.id),
                message: format!("bbox {:?} is not finite", a.bbox),
            });
        }
        let inter_w = ((x1 + w).min(im.width as f64) - x1.max(0.0)).max(0.0);
        let inter_h = ((y1 + h).min(im.height as f64) - y1.max(0.0)).max(0.0);
        if a.ignore || inter_w * inter_h == 0.0 || a.area <= 0.0 || w < 1.0 || h < 1.0 {
            continue;
        }
        let b = [x1 as f32, y1 as f32, (x1 + w) as f32, (y1 + h) as f32];
        let ann = &mut annotations[i];
        if a.iscrowd != 0 {
            ann.bboxes_ignore.push(b);
            ann.labels_ignore.push(l);
        } else {
            ann.bboxes.push(b);
            ann.labels.push(l);
            masks[i].push(segmentation);
        }
    }
    Ok(CocoAnnotations {
        images,
        categories,
        annotations,
        masks,
    })
}
