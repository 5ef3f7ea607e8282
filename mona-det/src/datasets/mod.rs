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

mod coco;
mod voc;

use std::path::PathBuf;

use crate::ops::boxes::Box4;

pub(crate) use coco::parse_rle;
pub use coco::{
    CocoAnnotations, CocoCategory, CocoImage, MaskAnnError, MaskAnnotation, read_coco_json,
};
pub use voc::{VocImage, apply_min_size, parse_voc_xml, read_voc_split, read_voc_xml, voc_classes};

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
    #[error("{}: annotation {id}: {source}", path.display())]
    Segmentation {
        path: PathBuf,
        id: u64,
        source: coco::MaskAnnError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
