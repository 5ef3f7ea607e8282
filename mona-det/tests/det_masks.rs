//! Instance masks from a COCO file through `DetDataset::load` (mmdet's `ann_info['masks']`
//! → `LoadAnnotations(with_mask = True)`), and the aspect-ratio group flags of the
//! detection datasets (mmdet `_set_group_flag`).

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use mona_core::config::Config;
use mona_data::masks::mask_bbox;
use mona_data::{Dataset, sample_rng};
use mona_det::data::{DetDataset, build_det_dataset};

const PIPELINE: &str = r#"[
  { type = "LoadImageFromFile" },
  { type = "LoadAnnotations", with_bbox = true, with_mask = true },
  { type = "Collect", keys = ["img", "gt_bboxes", "gt_labels", "gt_masks"] },
]"#;

/// Images: 1 = 40 x 32 (landscape), 2 = 32 x 48 (portrait), 3 = 40 x 32 whose box has no
/// `segmentation`. Image 1: a polygon box of class a, a one-column RLE box of class b and a
/// crowd box (no mask, as in mmdet).
const COCO: &str = r#"{
  "images": [
    {"id": 1, "file_name": "wide.png", "width": 40, "height": 32},
    {"id": 2, "file_name": "tall.png", "width": 32, "height": 48},
    {"id": 3, "file_name": "nomask.png", "width": 40, "height": 32}
  ],
  "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
  "annotations": [
    {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 2, 10, 6], "area": 60,
     "segmentation": [[4, 2, 14, 2, 14, 8, 4, 8]]},
    {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 1, 4], "area": 4,
     "segmentation": {"size": [32, 40], "counts": [0, 4, 1276]}},
    {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 1,
     "segmentation": {"size": [32, 40], "counts": [1280]}},
    {"id": 4, "image_id": 2, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100,
     "segmentation": [[1, 1, 11, 1, 11, 11, 1, 11]]},
    {"id": 5, "image_id": 3, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100}
  ]
}"#;

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("mona-det-masks-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Tmp(dir)
    }

    fn png(&self, rel: &str, w: u32, h: u32) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        RgbImage::from_pixel(w, h, Rgb([9, 9, 9]))
            .save_with_format(&p, image::ImageFormat::Png)
            .unwrap();
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn lit(p: &Path) -> String {
    format!("'{}'", p.display())
}

fn coco(tmp: &Tmp, extra: &str, test_mode: bool) -> DetDataset {
    std::fs::write(tmp.0.join("instances.json"), COCO).unwrap();
    tmp.png("wide.png", 40, 32);
    tmp.png("tall.png", 32, 48);
    tmp.png("nomask.png", 40, 32);
    let text = format!(
        "[d]\ntype = \"CocoDataset\"\nann_file = {}\nimg_prefix = {}\ntest_mode = {test_mode}\n{extra}\npipeline = {PIPELINE}\n",
        lit(&tmp.0.join("instances.json")),
        lit(&tmp.0),
    );
    let cfg = Config::from_str_at(&text, "configs/test.toml").unwrap();
    build_det_dataset(&cfg.node("d").unwrap(), false).unwrap()
}

#[test]
fn coco_masks_reach_the_pipeline() {
    let tmp = Tmp::new("coco");
    let ds = coco(&tmp, "", true);
    assert_eq!(ds.len(), 3);
    let r = ds.load(0, &mut sample_rng(0, 0, 0)).unwrap();
    assert_eq!(
        r.gt_bboxes,
        vec![[4.0, 2.0, 14.0, 8.0], [0.0, 0.0, 1.0, 4.0]]
    );
    assert_eq!(r.gt_labels, vec![0, 1]);
    assert_eq!(r.gt_bboxes_ignore.len(), 1);
    let masks = r.gt_masks.as_ref().unwrap();
    assert_eq!(masks.len(), 2);
    assert!(masks.iter().all(|m| (m.width(), m.height()) == (40, 32)));
    // the polygon fills x 4..14, y 2..8; the RLE fills column 0, rows 0..4
    assert_eq!(mask_bbox(&masks[0]), [4.0, 2.0, 14.0, 8.0]);
    assert_eq!(masks[0].pixels().filter(|p| p.0[0] == 1).count(), 60);
    assert_eq!(mask_bbox(&masks[1]), [0.0, 0.0, 1.0, 4.0]);
    assert_eq!(masks[1].pixels().filter(|p| p.0[0] == 1).count(), 4);
    // mmdet `_set_group_flag`: width / height > 1
    assert_eq!(ds.group_flags(), Some(vec![1, 0, 1]));
}

#[test]
fn masks_follow_their_boxes_through_class_selection() {
    let tmp = Tmp::new("classes");
    // only "b": image 1 keeps its RLE box; image 2 keeps no box (and no mask)
    let ds = coco(&tmp, "classes = [\"b\"]", true);
    let r = ds.load(0, &mut sample_rng(0, 0, 0)).unwrap();
    assert_eq!(r.gt_labels, vec![0]);
    let masks = r.gt_masks.as_ref().unwrap();
    assert_eq!(masks.len(), 1);
    assert_eq!(mask_bbox(&masks[0]), [0.0, 0.0, 1.0, 4.0]);
    let r = ds.load(1, &mut sample_rng(0, 0, 1)).unwrap();
    assert!(r.gt_bboxes.is_empty());
    assert_eq!(r.gt_masks.as_ref().map(Vec::len), Some(0));
}

#[test]
fn a_box_without_segmentation_is_an_error_naming_the_image() {
    let tmp = Tmp::new("noseg");
    let ds = coco(&tmp, "", true);
    let msg = ds
        .load(2, &mut sample_rng(0, 0, 2))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("nomask.png") && msg.contains("box 0") && msg.contains("segmentation"),
        "{msg}"
    );
}

#[test]
fn voc_has_no_masks() {
    let tmp = Tmp::new("voc");
    std::fs::create_dir_all(tmp.0.join("Annotations")).unwrap();
    std::fs::write(
        tmp.0.join("Annotations/000001.xml"),
        "<annotation><size><width>48</width><height>32</height></size>\
         <object><name>dog</name><difficult>0</difficult>\
         <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>\
         </annotation>",
    )
    .unwrap();
    std::fs::write(tmp.0.join("train.txt"), "000001\n").unwrap();
    tmp.png("JPEGImages/000001.jpg", 48, 32);
    let text = format!(
        "[d]\ntype = \"VOCDataset\"\nann_file = {}\nimg_prefix = {}\nclasses = [\"dog\"]\npipeline = {PIPELINE}\n",
        lit(&tmp.0.join("train.txt")),
        lit(&tmp.0),
    );
    let cfg = Config::from_str_at(&text, "configs/test.toml").unwrap();
    let ds = build_det_dataset(&cfg.node("d").unwrap(), false).unwrap();
    assert_eq!(ds.group_flags(), Some(vec![1]));
    let msg = ds
        .load(0, &mut sample_rng(0, 0, 0))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("000001.jpg") && msg.contains("no instance masks"),
        "{msg}"
    );
}
