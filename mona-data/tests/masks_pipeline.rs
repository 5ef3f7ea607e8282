//! Instance masks through an mmdet 2.x pipeline: `LoadAnnotations(with_mask = true)`
//! rasterises the raw annotations, and `Resize`, `RandomFlip` and `Pad` keep every mask on the
//! pixels of its object (hand-computed pixels and boxes), as mmdet's `BitmapMasks` do.

mod common;

use common::{config, rng, write_png};
use mona_data::masks::mask_bbox;
use mona_data::{Image, MaskAnnotation, MaskAnnotations, Pipeline, Results, build_pipeline};

/// A 10 x 6 image, red on the object x in [2, 5), y in [1, 4), black elsewhere; its box and
/// its mask given as a polygon (the same rectangle).
fn sample(dir: &std::path::Path) -> Results {
    let path = write_png(dir, "img.png", 10, 6, |x, y| {
        if (2..5).contains(&x) && (1..4).contains(&y) {
            [255, 0, 0]
        } else {
            [0, 0, 0]
        }
    });
    let mut r = Results::new(path);
    r.gt_bboxes = vec![[2.0, 1.0, 5.0, 4.0]];
    r.gt_labels = vec![0];
    r.gt_mask_anns = Some(MaskAnnotations {
        height: 6,
        width: 10,
        instances: vec![Some(MaskAnnotation::Polygons(vec![vec![
            2.0, 1.0, 5.0, 1.0, 5.0, 4.0, 2.0, 4.0,
        ]]))],
    });
    r
}

fn pipeline(steps: &str) -> Pipeline {
    let cfg = config(&format!("p = [\n{steps}\n]\n"));
    build_pipeline(&cfg.node("p").unwrap()).unwrap()
}

const LOAD: &str = r#"{ type = "LoadImageFromFile" },
  { type = "LoadAnnotations", with_bbox = true, with_mask = true },"#;

/// Every pixel of the unpadded image is red exactly where the mask is 1; the padding is 0.
fn assert_mask_on_object(r: &Results) {
    let Image::U8(img) = &r.img else {
        panic!("expected an 8-bit image")
    };
    let mask = &r.gt_masks.as_ref().unwrap()[0];
    assert_eq!((mask.width(), mask.height()), (img.width(), img.height()));
    let [h, w, _] = r.img_shape;
    for (x, y, p) in mask.enumerate_pixels() {
        let inside = (x as usize) < w && (y as usize) < h;
        let red = inside && img.get_pixel(x, y).0 == [255, 0, 0];
        assert_eq!(p.0[0] == 1, red, "pixel ({x}, {y})");
    }
}

#[test]
fn load_annotations_rasterises_polygons() {
    let dir = tempfile::tempdir().unwrap();
    let r = pipeline(LOAD)
        .apply(sample(dir.path()), &mut rng(0))
        .unwrap();
    assert!(r.gt_mask_anns.is_none(), "raw annotations are consumed");
    let masks = r.gt_masks.as_ref().unwrap();
    assert_eq!(masks.len(), 1);
    assert_eq!((masks[0].width(), masks[0].height()), (10, 6));
    assert_eq!(masks[0].pixels().filter(|p| p.0[0] == 1).count(), 9);
    assert_eq!(mask_bbox(&masks[0]), [2.0, 1.0, 5.0, 4.0]);
    assert_mask_on_object(&r);
}

#[test]
fn resize_flip_pad_keep_masks_on_their_object() {
    let dir = tempfile::tempdir().unwrap();
    // keep_ratio into 20 x 12: scale 2 -> 20 x 12; flip left-right; pad to 32 x 16.
    let p = pipeline(&format!(
        r#"{LOAD}
  {{ type = "Resize", img_scale = [20, 12], keep_ratio = true, interpolation = "nearest" }},
  {{ type = "RandomFlip", flip_ratio = 1.0 }},
  {{ type = "Pad", size_divisor = 16 }},
  {{ type = "DefaultFormatBundle" }},
  {{ type = "Collect", keys = ["img", "gt_bboxes", "gt_labels", "gt_masks"] }},"#
    ));
    let r = p.apply(sample(dir.path()), &mut rng(0)).unwrap();
    assert_eq!(r.img_shape, [12, 20, 3]);
    assert_eq!(r.pad_shape, Some([16, 32, 3]));
    // box: x [2, 5) -> [4, 10) -> flipped in a 20-wide image: [10, 16); y [1, 4) -> [2, 8)
    assert_eq!(r.gt_bboxes, vec![[10.0, 2.0, 16.0, 8.0]]);
    let mask = &r.gt_masks.as_ref().unwrap()[0];
    assert_eq!((mask.width(), mask.height()), (32, 16));
    assert_eq!(mask.pixels().filter(|p| p.0[0] == 1).count(), 36);
    assert_eq!(mask_bbox(mask), [10.0, 2.0, 16.0, 8.0]);
    assert_mask_on_object(&r);
}

#[test]
fn non_integer_scale_and_vertical_flip_stay_consistent() {
    let dir = tempfile::tempdir().unwrap();
    // keep_ratio into 15 x 9: scale 1.5 -> 15 x 9 (nearest, cv2 for both image and masks)
    let p = pipeline(&format!(
        r#"{LOAD}
  {{ type = "Resize", img_scale = [15, 9], keep_ratio = true, interpolation = "nearest" }},
  {{ type = "RandomFlip", flip_ratio = 1.0, direction = "vertical" }},
  {{ type = "Pad", size = [12, 16] }},"#
    ));
    let r = p.apply(sample(dir.path()), &mut rng(0)).unwrap();
    assert_eq!(r.img_shape, [9, 15, 3]);
    assert_eq!(r.pad_shape, Some([12, 16, 3]));
    // box: [3, 1.5, 7.5, 6] then flipped top-bottom in a 9-high image: y [3, 7.5)
    assert_eq!(r.gt_bboxes, vec![[3.0, 3.0, 7.5, 7.5]]);
    assert_mask_on_object(&r);
}

#[test]
fn rle_masks_load_column_major() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sample(dir.path());
    // 10 x 6: counts [7, 3, 50] sets column-major positions 7..10 = x 1, y 1..=3
    s.gt_mask_anns.as_mut().unwrap().instances = vec![Some(MaskAnnotation::Rle {
        height: 6,
        width: 10,
        counts: vec![7, 3, 50],
    })];
    let r = pipeline(LOAD).apply(s, &mut rng(0)).unwrap();
    assert_eq!(
        mask_bbox(&r.gt_masks.as_ref().unwrap()[0]),
        [1.0, 1.0, 2.0, 4.0]
    );
}

#[test]
fn masks_errors_name_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(LOAD);
    // no raw masks at all (a VOC sample)
    let mut s = sample(dir.path());
    s.gt_mask_anns = None;
    let msg = p.apply(s, &mut rng(0)).unwrap_err().to_string();
    assert!(
        msg.contains("img.png") && msg.contains("no instance masks"),
        "{msg}"
    );
    // a box without segmentation
    let mut s = sample(dir.path());
    s.gt_mask_anns.as_mut().unwrap().instances = vec![None];
    let msg = p.apply(s, &mut rng(0)).unwrap_err().to_string();
    assert!(
        msg.contains("img.png") && msg.contains("box 0") && msg.contains("segmentation"),
        "{msg}"
    );
    // the annotation's size differs from the decoded image
    let mut s = sample(dir.path());
    s.gt_mask_anns.as_mut().unwrap().height = 7;
    let msg = p.apply(s, &mut rng(0)).unwrap_err().to_string();
    assert!(msg.contains("img.png") && msg.contains("10x7"), "{msg}");
    // a bad RLE
    let mut s = sample(dir.path());
    s.gt_mask_anns.as_mut().unwrap().instances = vec![Some(MaskAnnotation::Rle {
        height: 6,
        width: 10,
        counts: vec![7, 3],
    })];
    let msg = p.apply(s, &mut rng(0)).unwrap_err().to_string();
    assert!(
        msg.contains("img.png") && msg.contains("RLE counts cover 10 pixels"),
        "{msg}"
    );
    // more masks than boxes
    let mut s = sample(dir.path());
    s.gt_bboxes.clear();
    s.gt_labels.clear();
    let msg = p.apply(s, &mut rng(0)).unwrap_err().to_string();
    assert!(msg.contains("1 mask annotations for 0 boxes"), "{msg}");
}

#[test]
fn unsupported_mask_options_are_build_errors() {
    let cfg = config(
        r#"p = [{ type = "LoadAnnotations", with_bbox = true, with_mask = true, poly2mask = false }]"#,
    );
    let msg = build_pipeline(&cfg.node("p").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("poly2mask") && msg.contains("only bitmap masks"),
        "{msg}"
    );
    // Collect of gt_masks without with_mask: mmdet's KeyError, here an error naming the key
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(
        r#"{ type = "LoadImageFromFile" },
  { type = "LoadAnnotations", with_bbox = true },
  { type = "Collect", keys = ["img", "gt_masks"] },"#,
    );
    let msg = p
        .apply(sample(dir.path()), &mut rng(0))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("gt_masks"), "{msg}");
    // without with_mask the raw annotations are dropped, no bitmaps made (mmdet loads none)
    let p = pipeline(
        r#"{ type = "LoadImageFromFile" },
  { type = "LoadAnnotations", with_bbox = true },"#,
    );
    let r = p.apply(sample(dir.path()), &mut rng(0)).unwrap();
    assert!(r.gt_mask_anns.is_none() && r.gt_masks.is_none());
}
