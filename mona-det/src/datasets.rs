//! Annotation readers of mmdet 2.x's `XMLDataset` (Pascal VOC) and `CocoDataset`: boxes as
//! `[x1, y1, x2, y2]`, class indices in the order of the dataset's class list, difficult /
//! crowd boxes set apart as ignored. Errors name the file and the element or key at fault.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mona_core::ops::boxes::Box4;
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
    #[error("{}: {source}", path.display())]
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
                let el = stack
                    .pop()
                    .ok_or_else(|| err("unbalanced end tag".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Err(err("unbalanced end tag".into())),
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
                return Err(err(format!("at byte {}: {e}", reader.error_position())));
            }
        }
    }
    if stack.len() != 1 {
        return Err(err("unclosed element".into()));
    }
    let mut root = stack.pop().unwrap_or_default();
    root.children
        .pop()
        .ok_or_else(|| err("no root element".into()))
}

/// Reads a Pascal VOC annotation (`Annotations/NAME.xml`) like mmdet's `XMLDataset`:
/// objects of unknown classes are skipped, coordinates are `int(float(text))` (1-based, as
/// stored), `difficult` boxes go to the ignored set.
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
    let number = |el: &Element, at: &str| -> Result<f64, DatasetError> {
        el.text.parse::<f64>().map_err(|_| DatasetError::Number {
            path: path.to_path_buf(),
            element: at.to_string(),
            text: el.text.clone(),
        })
    };
    let size = root.child("size").ok_or_else(|| missing("size"))?;
    let dim = |name: &str| -> Result<usize, DatasetError> {
        let at = format!("size/{name}");
        let el = size.child(name).ok_or_else(|| missing(&at))?;
        Ok(number(el, &at)? as usize)
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

/// mmdet's `VOCDataset.CLASSES` (the 20 PASCAL VOC classes, shared with classification).
pub use mona_data::datasets::voc_classes;

/// One image of a VOC split.
#[derive(Debug, Clone, PartialEq)]
pub struct VocImage {
    pub id: String,
    /// `img_prefix/JPEGImages/ID.jpg`.
    pub filename: PathBuf,
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
    #[serde(default)]
    area: f64,
    #[serde(default)]
    iscrowd: u8,
    #[serde(default)]
    ignore: bool,
}

#[derive(Debug, Clone, Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    #[serde(default)]
    annotations: Vec<CocoAnn>,
    categories: Vec<CocoCategory>,
}

/// A COCO annotation file read like mmdet's `CocoDataset`.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoAnnotations {
    pub images: Vec<CocoImage>,
    /// Categories sorted by id; a label is the index here (mmdet's `cat2label`).
    pub categories: Vec<CocoCategory>,
    /// Per image of `images`, in order.
    pub annotations: Vec<DetAnnotation>,
}

/// Reads `instances_*.json`: boxes `[x, y, w, h]` → `[x1, y1, x1 + w, y1 + h]`; skipped as in
/// mmdet `_parse_ann_info`: `ignore` flags, boxes not overlapping the image, `area ≤ 0`,
/// `w < 1` or `h < 1`; crowd boxes go to the ignored set.
pub fn read_coco_json(path: &Path) -> Result<CocoAnnotations, DatasetError> {
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file: CocoFile = serde_json::from_str(&text).map_err(|source| DatasetError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    let mut categories = file.categories;
    categories.sort_by_key(|c| c.id);
    let label: HashMap<u64, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.id, i))
        .collect();
    let position: HashMap<u64, usize> = file
        .images
        .iter()
        .enumerate()
        .map(|(i, im)| (im.id, i))
        .collect();
    let mut annotations: Vec<DetAnnotation> = file
        .images
        .iter()
        .map(|im| DetAnnotation {
            width: im.width,
            height: im.height,
            ..DetAnnotation::default()
        })
        .collect();
    for a in &file.annotations {
        let &i = position
            .get(&a.image_id)
            .ok_or_else(|| DatasetError::UnknownImage {
                path: path.to_path_buf(),
                id: a.id,
                image_id: a.image_id,
            })?;
        let im = &file.images[i];
        let [x1, y1, w, h] = a.bbox;
        let inter_w = ((x1 + w).min(im.width as f64) - x1.max(0.0)).max(0.0);
        let inter_h = ((y1 + h).min(im.height as f64) - y1.max(0.0)).max(0.0);
        if a.ignore || inter_w * inter_h == 0.0 || a.area <= 0.0 || w < 1.0 || h < 1.0 {
            continue;
        }
        let Some(&l) = label.get(&a.category_id) else {
            continue;
        };
        let b = [x1 as f32, y1 as f32, (x1 + w) as f32, (y1 + h) as f32];
        let ann = &mut annotations[i];
        if a.iscrowd != 0 {
            ann.bboxes_ignore.push(b);
            ann.labels_ignore.push(l);
        } else {
            ann.bboxes.push(b);
            ann.labels.push(l);
        }
    }
    Ok(CocoAnnotations {
        images: file.images,
        categories,
        annotations,
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
