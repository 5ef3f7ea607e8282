//! Pascal VOC XML annotations (mmdet 2.x `XMLDataset`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;

use super::{DatasetError, DetAnnotation};

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
