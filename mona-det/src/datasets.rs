//! Annotation readers of mmdet 2.x's `XMLDataset` (Pascal VOC) and `CocoDataset`: boxes as
//! `[x1, y1, x2, y2]`, class indices in the order of the dataset's class list, difficult /
//! crowd boxes set apart as ignored. Errors name the file and the element or key at fault.
//!
//! Bad input, and what happens to it (tests in `tests/datasets_bad_input.rs`):
//!
//! | input | VOC XML | COCO json |
//! |---|---|---|
//! | malformed file | error: file and line | error: file, line and column |
//! | missing / non-numeric field (COCO: `area` included) | error: file and element path (`object[2]/bndbox/xmax`) | error: file, `annotations[i]` and annotation id |
//! | `x2 < x1`, zero-area box | kept as written (mmdet's `XMLDataset` checks nothing; [`apply_min_size`] is its optional `min_size` filter) | dropped (`w < 1`, `h < 1` or `area <= 0`, mmdet `_parse_ann_info`) |
//! | box partly outside the image | kept, not clipped | kept, not clipped |
//! | box entirely outside the image | kept | dropped (no overlap with the image) |
//! | category id not in `categories` | - (unknown class *names* are skipped, as mmdet) | error: file and annotation id |
//! | polygon part with < 3 points or an odd number of coordinates | - | part dropped (mmdet `LoadAnnotations._process_polygons`) |
//! | RLE whose `size` is not the image's `[height, width]`, or whose counts do not cover it | - | error: file and annotation id |
//! | annotation of an image not in `images`, duplicate image id | - | error: file and ids |

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::ops::boxes::Box4;
use quick_xml::events::Event;
use serde::Deserialize;

/// The annotation of one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetAnnotation {
    pub width: usize,
    pub height: usize,
    pub bboxes: Vec<Box4>,
    pub labels: Vec<usize>,
    /// Difficult (VOC) or crowd (COCO) boxes.
    pub bboxes_ignore: Vec<Box4>,
    pub labels_ignore: Vec<usize>,
}

/// A failed read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: malformed XML: {message}", path.display())]
    Xml { path: PathBuf, message: String },
    #[error("{}: missing element `{element}`", path.display())]
    Missing { path: PathBuf, element: String },
    #[error("{}: `{element}` is not a number: {text:?}", path.display())]
    Number {
        path: PathBuf,
        element: String,
        text: String,
    },
    #[error("{}: invalid COCO json: {source}", path.display())]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{}: annotation {id} names image {image_id}, which is not in `images`", path.display())]
    UnknownImage {
        path: PathBuf,
        id: u64,
        image_id: u64,
    },
    #[error("{}: `{element}`: {message}", path.display())]
    Element {
        path: PathBuf,
        element: String,
        message: String,
    },
    #[error("{}: annotation {id} has category_id {category_id}, which is not in `categories`", path.display())]
    UnknownCategory {
        path: PathBuf,
        id: u64,
        category_id: u64,
    },
    #[error("{}: image id {id} appears twice in `images`", path.display())]
    DuplicateImage { path: PathBuf, id: u64 },
    #[error("{}: annotation {id}: {message}", path.display())]
    Segmentation {
        path: PathBuf,
        id: u64,
        message: String,
    },
}

/// An XML element: its name, text and children.
#[derive(Debug, Default)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// 1-based line of byte offset `pos` in `text`.
fn line_of(text: &str, pos: u64) -> usize {
    let pos = usize::try_from(pos).unwrap_or(usize::MAX).min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn parse_xml(text: &str, path: &Path) -> Result<Element, DatasetError> {
    let err = |message: String| DatasetError::Xml {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack = vec![Element::default()];
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => stack.push(Element {
                name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                ..Element::default()
            }),
            Ok(Event::Empty(e)) => {
                let el = Element {
                    name: String::from_utf8_lossy(e.name().as_ref()).into_owned(),
                    ..Element::default()
                };
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(el);
                }
            }
            Ok(Event::End(_)) => {
                let line = line_of(text, reader.buffer_position());
                let el = stack
                    .pop()
                    .ok_or_else(|| err(format!("line {line}: unbalanced end tag")))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Err(err(format!("line {line}: unbalanced end tag"))),
                }
            }
            Ok(Event::Text(t)) => {
                let s = t.decode().map_err(|e| err(e.to_string()))?;
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(s.trim());
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                let line = line_of(text, reader.error_position());
                return Err(err(format!("line {line}: {e}")));
            }
        }
    }
    if stack.len() != 1 {
        let open: Vec<&str> = stack[1..].iter().map(|e| e.name.as_str()).collect();
        return Err(err(format!(
            "unexpected end of file inside <{}>",
            open.join("><")
        )));
    }
    let mut root = stack.pop().unwrap_or_default();
    root.children
        .pop()
        .ok_or_else(|| err("no root element".into()))
}

/// Reads a Pascal VOC annotation (`Annotations/NAME.xml`) like mmdet's `XMLDataset`:
/// objects of unknown classes are skipped, coordinates are `int(float(text))` (1-based, as
/// stored), `difficult` boxes go to the ignored set. Like mmdet, boxes are kept exactly as
/// written: not clipped to the image, not reordered when `xmax < xmin`, zero-area boxes kept
/// (mmdet's optional `min_size` filter is [`apply_min_size`]).
pub fn read_voc_xml(path: &Path, classes: &[String]) -> Result<DetAnnotation, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_voc_xml(&text, path, classes)
}

/// [`read_voc_xml`] on text already read (`path` only names it in errors).
pub fn parse_voc_xml(
    text: &str,
    path: &Path,
    classes: &[String],
) -> Result<DetAnnotation, DatasetError> {
    let root = parse_xml(text, path)?;
    let missing = |element: &str| DatasetError::Missing {
        path: path.to_path_buf(),
        element: element.to_string(),
    };
    // `inf` / `NaN` parse as f64 but are no coordinates: refused like any other non-number
    let number = |el: &Element, at: &str| -> Result<f64, DatasetError> {
        match el.text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(DatasetError::Number {
                path: path.to_path_buf(),
                element: at.to_string(),
                text: el.text.clone(),
            }),
        }
    };
    let size = root.child("size").ok_or_else(|| missing("size"))?;
    let dim = |name: &str| -> Result<usize, DatasetError> {
        let at = format!("size/{name}");
        let el = size.child(name).ok_or_else(|| missing(&at))?;
        let v = number(el, &at)?;
        if v < 0.0 {
            return Err(DatasetError::Number {
                path: path.to_path_buf(),
                element: at,
                text: el.text.clone(),
            });
        }
        Ok(v as usize)
    };
    let mut ann = DetAnnotation {
        width: dim("width")?,
        height: dim("height")?,
        ..DetAnnotation::default()
    };
    let index: HashMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    for (k, obj) in root
        .children
        .iter()
        .filter(|c| c.name == "object")
        .enumerate()
    {
        let at = |e: &str| format!("object[{k}]/{e}");
        let name = obj.child("name").ok_or_else(|| missing(&at("name")))?;
        let Some(&label) = index.get(name.text.as_str()) else {
            continue;
        };
        let difficult = match obj.child("difficult") {
            Some(d) if !d.text.is_empty() => number(d, &at("difficult"))? != 0.0,
            _ => false,
        };
        let bnd = obj.child("bndbox").ok_or_else(|| missing(&at("bndbox")))?;
        let mut b = [0f32; 4];
        for (v, key) in b.iter_mut().zip(["xmin", "ymin", "xmax", "ymax"]) {
            let el_at = at(&format!("bndbox/{key}"));
            let el = bnd.child(key).ok_or_else(|| missing(&el_at))?;
            *v = number(el, &el_at)?.trunc() as f32;
        }
        if difficult {
            ann.bboxes_ignore.push(b);
            ann.labels_ignore.push(label);
        } else {
            ann.bboxes.push(b);
            ann.labels.push(label);
        }
    }
    Ok(ann)
}

/// mmdet `XMLDataset(min_size=...)`: boxes whose width or height (`x2 - x1`, `y2 - y1`, so a
/// box with `x2 < x1` too) is below `min_size` move to the ignored set.
pub fn apply_min_size(ann: &mut DetAnnotation, min_size: f32) {
    let (mut bboxes, mut labels) = (Vec::new(), Vec::new());
    for (b, l) in ann.bboxes.drain(..).zip(ann.labels.drain(..)) {
        if b[2] - b[0] < min_size || b[3] - b[1] < min_size {
            ann.bboxes_ignore.push(b);
            ann.labels_ignore.push(l);
        } else {
            bboxes.push(b);
            labels.push(l);
        }
    }
    ann.bboxes = bboxes;
    ann.labels = labels;
}

/// mmdet's `VOCDataset.CLASSES` (the 20 PASCAL VOC classes, shared with classification).
pub use mona_data::datasets::voc_classes;

/// One image of a VOC split.
#[derive(Debug, Clone, PartialEq)]
pub struct VocImage {
    pub id: String,
    /// `img_prefix/JPEGImages/ID.jpg`.
    pub filename: PathBuf,
    /// `img_prefix/Annotations/ID.xml`, which `ann` was read from.
    pub xml: PathBuf,
    pub ann: DetAnnotation,
}

/// mmdet `XMLDataset.load_annotations` + `get_ann_info`: the ids of `ann_file` (one per line,
/// e.g. `VOC2007/ImageSets/Main/test.txt`), each read from `img_prefix/Annotations/ID.xml`.
pub fn read_voc_split(
    ann_file: &Path,
    img_prefix: &Path,
    classes: &[String],
) -> Result<Vec<VocImage>, DatasetError> {
    let list = std::fs::read_to_string(ann_file).map_err(|source| DatasetError::Io {
        path: ann_file.to_path_buf(),
        source,
    })?;
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|id| {
            let xml = img_prefix.join("Annotations").join(format!("{id}.xml"));
            Ok(VocImage {
                id: id.to_string(),
                filename: img_prefix.join("JPEGImages").join(format!("{id}.jpg")),
                ann: read_voc_xml(&xml, classes)?,
                xml,
            })
        })
        .collect()
}

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

/// A COCO RLE object (`{"size": [h, w], "counts": ...}`, compressed or not) of an image of
/// `height x width`: its size must be the image's and its runs must cover every pixel.
pub(crate) fn parse_rle(
    rle: &serde_json::Map<String, serde_json::Value>,
    height: usize,
    width: usize,
) -> Result<MaskAnnotation, String> {
    use serde_json::Value;
    let size: Option<Vec<usize>> = rle.get("size").and_then(Value::as_array).and_then(|a| {
        a.iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect()
    });
    let Some([h, w]) = size.and_then(|s| <[usize; 2]>::try_from(s).ok()) else {
        return Err("RLE `size` must be [height, width]".into());
    };
    if (h, w) != (height, width) {
        return Err(format!(
            "RLE size [{h}, {w}] does not match the image ([height, width] = [{height}, {width}])"
        ));
    }
    let counts = match rle.get("counts") {
        Some(Value::String(s)) => rle_from_string(s)?,
        Some(Value::Array(a)) => a
            .iter()
            .map(|c| c.as_u64().and_then(|c| u32::try_from(c).ok()))
            .collect::<Option<Vec<u32>>>()
            .ok_or("RLE `counts` must be non-negative integers")?,
        _ => return Err("RLE `counts` must be a string or a list".into()),
    };
    let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
    let pixels = h as u128 * w as u128;
    if total != pixels {
        return Err(format!(
            "RLE counts cover {total} pixels, the image has {h} x {w} = {pixels}"
        ));
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

/// pycocotools' `rleFrString`: the LEB128-like compressed counts of a COCO RLE.
fn rle_from_string(s: &str) -> Result<Vec<u32>, String> {
    let bytes = s.as_bytes();
    let mut counts: Vec<u32> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0u32, true);
        while more {
            let Some(&b) = bytes.get(p) else {
                return Err("compressed RLE counts end inside a number".into());
            };
            if !(48..48 + 64).contains(&b) || k > 11 {
                return Err(format!("invalid compressed RLE counts at character {p}"));
            }
            let c = i64::from(b - 48);
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && c & 0x10 != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        if counts.len() > 2 {
            x += i64::from(counts[counts.len() - 2]);
        }
        let v = u32::try_from(x)
            .map_err(|_| format!("compressed RLE counts give run {x} at character {p}"))?;
        counts.push(v);
    }
    Ok(counts)
}

/// Validates one `segmentation` against its image (`height`, `width`).
fn parse_segmentation(
    v: &serde_json::Value,
    height: usize,
    width: usize,
) -> Result<Option<MaskAnnotation>, String> {
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
                let coords =
                    coords.ok_or_else(|| format!("segmentation[{j}] is not a list of numbers"))?;
                if coords.len() % 2 == 0 && coords.len() >= 6 {
                    kept.push(coords);
                }
            }
            Ok(Some(MaskAnnotation::Polygons(kept)))
        }
        Value::Object(rle) => parse_rle(rle, height, width).map(Some),
        _ => Err("`segmentation` must be a list of polygons or an RLE object".into()),
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
            Some(seg) => parse_segmentation(seg, im.height, im.width).map_err(|message| {
                DatasetError::Segmentation {
                    path: path.to_path_buf(),
                    id: a.id,
                    message,
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

#[cfg(test)]
mod tests {
    use super::*;

    const VOC: &str = r#"<annotation>
  <filename>000001.jpg</filename>
  <size><width>353</width><height>500</height><depth>3</depth></size>
  <object><name>dog</name><difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195.5</xmax><ymax>371</ymax></bndbox></object>
  <object><name>person</name><difficult>1</difficult>
    <bndbox><xmin>8</xmin><ymin>12</ymin><xmax>352</xmax><ymax>498</ymax></bndbox></object>
  <object><name>unicorn</name>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>
</annotation>"#;

    fn classes() -> Vec<String> {
        vec!["dog".into(), "person".into()]
    }

    #[test]
    fn voc_xml_like_mmdet() {
        let a = parse_voc_xml(VOC, Path::new("a.xml"), &classes()).expect("parse");
        assert_eq!((a.width, a.height), (353, 500));
        assert_eq!(a.bboxes, vec![[48.0, 240.0, 195.0, 371.0]]);
        assert_eq!(a.labels, vec![0]);
        assert_eq!(a.bboxes_ignore, vec![[8.0, 12.0, 352.0, 498.0]]);
        assert_eq!(a.labels_ignore, vec![1]);
    }

    #[test]
    fn voc_errors_name_file_and_element() {
        let bad = VOC.replace("<ymax>371</ymax>", "");
        let e = parse_voc_xml(&bad, Path::new("Annotations/x.xml"), &classes())
            .expect_err("missing ymax");
        let msg = e.to_string();
        assert!(
            msg.contains("Annotations/x.xml") && msg.contains("object[0]/bndbox/ymax"),
            "{msg}"
        );
        let bad = VOC.replace("<width>353</width>", "<width>wide</width>");
        let msg = parse_voc_xml(&bad, Path::new("y.xml"), &classes())
            .expect_err("bad number")
            .to_string();
        assert!(msg.contains("y.xml") && msg.contains("size/width"), "{msg}");
        let msg = parse_voc_xml("<annotation><size>", Path::new("z.xml"), &classes())
            .expect_err("truncated")
            .to_string();
        assert!(msg.contains("z.xml"), "{msg}");
    }

    #[test]
    fn voc_split_reads_every_listed_id() {
        let dir = std::env::temp_dir().join(format!("mona-det-voc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("Annotations")).expect("dir");
        std::fs::write(dir.join("Annotations/000001.xml"), VOC).expect("write");
        std::fs::write(dir.join("test.txt"), "000001\n\n000002\n").expect("write");
        let err = read_voc_split(&dir.join("test.txt"), &dir, &classes()).expect_err("missing");
        assert!(err.to_string().contains("000002.xml"), "{err}");
        std::fs::write(dir.join("test.txt"), "000001\n").expect("write");
        let split = read_voc_split(&dir.join("test.txt"), &dir, &classes()).expect("read");
        assert_eq!(split.len(), 1);
        assert!(split[0].filename.ends_with("JPEGImages/000001.jpg"));
        assert_eq!(split[0].ann.labels, vec![0]);
        assert_eq!(voc_classes().len(), 20);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn coco_json_like_mmdet() {
        let dir = std::env::temp_dir().join(format!("mona-det-ds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("instances.json");
        std::fs::write(
            &p,
            r#"{"images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 50}],
               "categories": [{"id": 3, "name": "b"}, {"id": 1, "name": "a"}],
               "annotations": [
                 {"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 5, 20, 10], "area": 200, "iscrowd": 0},
                 {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 1},
                 {"id": 3, "image_id": 7, "category_id": 1, "bbox": [0, 0, 0.5, 5], "area": 2, "iscrowd": 0},
                 {"id": 4, "image_id": 7, "category_id": 1, "bbox": [200, 0, 5, 5], "area": 25, "iscrowd": 0}
               ]}"#,
        )
        .expect("write");
        let c = read_coco_json(&p).expect("read");
        assert_eq!(c.categories[0].name, "a");
        let a = &c.annotations[0];
        assert_eq!(a.bboxes, vec![[10.0, 5.0, 30.0, 15.0]]);
        assert_eq!(a.labels, vec![1]);
        assert_eq!(a.labels_ignore, vec![0]);
        std::fs::write(
            &p,
            r#"{"images": [], "categories": [], "annotations": [{"id": 1}]}"#,
        )
        .expect("write");
        let msg = read_coco_json(&p).expect_err("bad").to_string();
        assert!(msg.contains("instances.json"), "{msg}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
