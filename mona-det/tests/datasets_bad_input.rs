//! Bad input for the VOC XML and COCO json readers: each case either fails with an error
//! naming the file and the element / annotation at fault, or is handled the documented way
//! (mmdet 2.x's behaviour, see the table at the top of `mona_det::datasets`). Never a panic.

use std::path::{Path, PathBuf};

use mona_det::datasets::{
    MaskAnnotation, apply_min_size, parse_voc_xml, read_coco_json, read_voc_xml,
};

fn classes() -> Vec<String> {
    vec!["dog".into(), "person".into()]
}

fn voc(objects: &str) -> String {
    format!(
        "<annotation>\n  <size><width>100</width><height>80</height><depth>3</depth></size>\n{objects}</annotation>\n"
    )
}

fn obj(name: &str, b: [&str; 4]) -> String {
    format!(
        "  <object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{}</xmin><ymin>{}</ymin><xmax>{}</xmax><ymax>{}</ymax></bndbox></object>\n",
        b[0], b[1], b[2], b[3]
    )
}

fn voc_err(text: &str) -> String {
    parse_voc_xml(text, Path::new("Annotations/bad.xml"), &classes())
        .expect_err("must fail")
        .to_string()
}

#[test]
fn voc_malformed_xml_names_file_and_line() {
    // a mismatched end tag on line 3
    let text = "<annotation>\n  <size><width>100</width><height>80</height></size>\n  <object><name>dog</nme></object>\n</annotation>\n";
    let msg = voc_err(text);
    assert!(
        msg.starts_with("Annotations/bad.xml: malformed XML: line 3: "),
        "{msg}"
    );
    // truncated file: the open elements are named
    assert_eq!(
        voc_err("<annotation>\n  <size><width>100</width>"),
        "Annotations/bad.xml: malformed XML: unexpected end of file inside <annotation><size>"
    );
    // no root element at all
    assert_eq!(
        voc_err(""),
        "Annotations/bad.xml: malformed XML: no root element"
    );
    // a file that cannot be read is named too
    let e = read_voc_xml(Path::new("/nonexistent/Annotations/x.xml"), &classes())
        .expect_err("missing")
        .to_string();
    assert!(e.starts_with("/nonexistent/Annotations/x.xml: "), "{e}");
}

#[test]
fn voc_bad_numbers_name_the_element() {
    let text = voc(&(obj("dog", ["1", "2", "3", "4"]) + &obj("dog", ["1", "2", "x3", "4"])));
    assert_eq!(
        voc_err(&text),
        "Annotations/bad.xml: `object[1]/bndbox/xmax` is not a number: \"x3\""
    );
    let text = voc(&obj("dog", ["1", "2", "inf", "4"]));
    assert_eq!(
        voc_err(&text),
        "Annotations/bad.xml: `object[0]/bndbox/xmax` is not a number: \"inf\""
    );
    let text = voc("").replace("<width>100</width>", "<width>-5</width>");
    assert_eq!(
        voc_err(&text),
        "Annotations/bad.xml: `size/width` is not a number: \"-5\""
    );
    let text = voc("").replace("<height>80</height>", "");
    assert_eq!(
        voc_err(&text),
        "Annotations/bad.xml: missing element `size/height`"
    );
    let text = voc("  <object><name>dog</name></object>\n");
    assert_eq!(
        voc_err(&text),
        "Annotations/bad.xml: missing element `object[0]/bndbox`"
    );
}

#[test]
fn voc_boxes_are_kept_as_written_like_mmdet() {
    // x2 < x1, outside the image, zero area: mmdet's XMLDataset keeps all of them unchanged
    let text = voc(&(obj("dog", ["50", "10", "20", "30"])
        + &obj("person", ["90", "70", "250", "300"])
        + &obj("dog", ["-10", "-10", "-2", "-3"])
        + &obj("dog", ["5", "5", "5", "5"])));
    let a = parse_voc_xml(&text, Path::new("a.xml"), &classes()).expect("parse");
    assert_eq!(
        a.bboxes,
        vec![
            [50.0, 10.0, 20.0, 30.0],
            [90.0, 70.0, 250.0, 300.0],
            [-10.0, -10.0, -2.0, -3.0],
            [5.0, 5.0, 5.0, 5.0]
        ]
    );
    assert_eq!(a.labels, vec![0, 1, 0, 0]);
    // mmdet's optional `min_size`: too small (and reversed) boxes become ignored
    let mut a = a;
    apply_min_size(&mut a, 1.0);
    assert_eq!(
        a.bboxes,
        vec![[90.0, 70.0, 250.0, 300.0], [-10.0, -10.0, -2.0, -3.0]]
    );
    assert_eq!(a.labels, vec![1, 0]);
    assert_eq!(
        a.bboxes_ignore,
        vec![[50.0, 10.0, 20.0, 30.0], [5.0, 5.0, 5.0, 5.0]]
    );
    assert_eq!(a.labels_ignore, vec![0, 0]);
}

#[test]
fn voc_hundreds_of_boxes() {
    let objects: String = (0..600)
        .map(|k| {
            let x = (k % 90).to_string();
            let y = (k % 70).to_string();
            let x2 = (k % 90 + 10).to_string();
            let y2 = (k % 70 + 10).to_string();
            obj(
                if k % 3 == 0 { "person" } else { "dog" },
                [&x, &y, &x2, &y2],
            )
        })
        .collect();
    let a = parse_voc_xml(&voc(&objects), Path::new("many.xml"), &classes()).expect("parse");
    assert_eq!(a.bboxes.len(), 600);
    assert_eq!(a.labels.iter().filter(|&&l| l == 1).count(), 200);
    assert_eq!(a.bboxes[599], [59.0, 39.0, 69.0, 49.0]);
}

struct Tmp(PathBuf);

impl Tmp {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mona-det-bad-{tag}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn coco(anns: &str) -> String {
    format!(
        r#"{{"images": [{{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}},
                       {{"id": 2, "file_name": "b.jpg", "width": 4, "height": 3}}],
            "categories": [{{"id": 1, "name": "a"}}, {{"id": 5, "name": "b"}}],
            "annotations": [{anns}]}}"#
    )
}

fn coco_err(tmp: &Tmp, text: &str) -> String {
    let p = tmp.write("instances.json", text);
    let msg = read_coco_json(&p).expect_err("must fail").to_string();
    let prefix = format!("{}: ", p.display());
    assert!(msg.starts_with(&prefix), "{msg}");
    msg[prefix.len()..].to_string()
}

#[test]
fn coco_malformed_json_names_file_line_and_annotation() {
    let tmp = Tmp::new("json");
    assert_eq!(
        coco_err(&tmp, "{\"images\": [\n  {\"id\": 1,}\n]}"),
        "invalid COCO json: trailing comma at line 2 column 12"
    );
    assert_eq!(
        coco_err(&tmp, r#"{"images": [], "annotations": []}"#),
        "invalid COCO json: missing field `categories` at line 1 column 33"
    );
    assert_eq!(
        coco_err(
            &tmp,
            &coco(r#"{"id": 17, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "area": 4}"#)
        ),
        "`annotations[0] (id 17)`: invalid length 3, expected an array of length 4"
    );
    assert_eq!(
        coco_err(
            &tmp,
            &coco(r#"{"id": 3, "image_id": 1, "bbox": [1, 2, 3, 4], "area": 4}"#)
        ),
        "`annotations[0] (id 3)`: missing field `category_id`"
    );
    assert_eq!(
        coco_err(
            &tmp,
            &coco(r#"{"id": 4, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}"#)
        ),
        "`annotations[0] (id 4)`: missing field `area`"
    );
    let text = coco("").replace(r#""width": 4"#, r#""width": "four""#);
    assert_eq!(
        coco_err(&tmp, &text),
        "`images[1] (id 2)`: invalid type: string \"four\", expected usize"
    );
}

#[test]
fn coco_unknown_ids_are_errors() {
    let tmp = Tmp::new("ids");
    assert_eq!(
        coco_err(
            &tmp,
            &coco(
                r#"{"id": 42, "image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 12}"#
            )
        ),
        "annotation 42 has category_id 3, which is not in `categories`"
    );
    assert_eq!(
        coco_err(
            &tmp,
            &coco(
                r#"{"id": 43, "image_id": 9, "category_id": 1, "bbox": [1, 2, 3, 4], "area": 12}"#
            )
        ),
        "annotation 43 names image 9, which is not in `images`"
    );
    let text = coco("").replace(r#""id": 2, "file_name""#, r#""id": 1, "file_name""#);
    assert_eq!(
        coco_err(&tmp, &text),
        "image id 1 appears twice in `images`"
    );
}

#[test]
fn coco_boxes_filtered_like_mmdet_parse_ann_info() {
    let tmp = Tmp::new("boxes");
    let anns = [
        // kept: partly outside the image, not clipped
        r#"{"id": 1, "image_id": 1, "category_id": 5, "bbox": [90, 40, 30, 30], "area": 900}"#,
        // dropped: x2 < x1 written as a negative width
        r#"{"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 10, -20, 10], "area": 200}"#,
        // dropped: zero width, zero area field, w < 1
        r#"{"id": 3, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10], "area": 0}"#,
        r#"{"id": 4, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 0}"#,
        r#"{"id": 5, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0.5, 10], "area": 5}"#,
        // dropped: entirely outside the image
        r#"{"id": 6, "image_id": 1, "category_id": 1, "bbox": [100, 0, 10, 10], "area": 100}"#,
        // dropped: `ignore` flag
        r#"{"id": 7, "image_id": 1, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "ignore": true}"#,
        // crowd: to the ignored set
        r#"{"id": 8, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4, "iscrowd": 1}"#,
    ]
    .join(",");
    let p = tmp.write("instances.json", &coco(&anns));
    let c = read_coco_json(&p).expect("read");
    assert_eq!(c.annotations[0].bboxes, vec![[90.0, 40.0, 120.0, 70.0]]);
    assert_eq!(c.annotations[0].labels, vec![1]);
    assert!(c.annotations[0].bboxes_ignore.is_empty());
    assert_eq!(c.annotations[1].bboxes_ignore, vec![[0.0, 0.0, 2.0, 2.0]]);
    assert_eq!(c.masks, vec![vec![None], vec![]]);
}

#[test]
fn coco_hundreds_of_boxes() {
    let tmp = Tmp::new("many");
    let anns: Vec<String> = (0..500)
        .map(|k| {
            format!(
                r#"{{"id": {k}, "image_id": 1, "category_id": {}, "bbox": [{}, {}, 8, 6], "area": 48,
                    "segmentation": [[0, 0, 8, 0, 8, 6]]}}"#,
                if k % 2 == 0 { 1 } else { 5 },
                k % 90,
                k % 40
            )
        })
        .collect();
    let p = tmp.write("instances.json", &coco(&anns.join(",")));
    let c = read_coco_json(&p).expect("read");
    assert_eq!(c.annotations[0].bboxes.len(), 500);
    assert_eq!(c.masks[0].len(), 500);
    assert_eq!(
        c.annotations[0].labels.iter().filter(|&&l| l == 1).count(),
        250
    );
}

#[test]
fn coco_polygons_with_fewer_than_three_points_are_dropped() {
    let tmp = Tmp::new("poly");
    let anns = [
        // one valid part, one with 2 points, one with an odd number of coordinates
        r#"{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 50,
            "segmentation": [[0, 0, 10, 0, 10, 10], [1, 1, 2, 2], [0, 0, 1, 0, 1, 1, 5]]}"#,
        // nothing valid: kept with an empty polygon list, as mmdet keeps it
        r#"{"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 50,
            "segmentation": [[1, 1, 2, 2]]}"#,
    ]
    .join(",");
    let p = tmp.write("instances.json", &coco(&anns));
    let c = read_coco_json(&p).expect("read");
    assert_eq!(
        c.masks[0],
        vec![
            Some(MaskAnnotation::Polygons(vec![vec![
                0.0, 0.0, 10.0, 0.0, 10.0, 10.0
            ]])),
            Some(MaskAnnotation::Polygons(vec![])),
        ]
    );
    assert_eq!(
        coco_err(
            &tmp,
            &coco(
                r#"{"id": 9, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 50,
                    "segmentation": [[0, 0, "x", 0, 10, 10]]}"#
            )
        ),
        "annotation 9: segmentation[0] is not a list of numbers"
    );
}

#[test]
fn coco_rle_must_match_the_image() {
    let tmp = Tmp::new("rle");
    // image 2 is 4 wide, 3 high: 12 pixels
    let ann = |seg: &str| {
        coco(&format!(
            r#"{{"id": 7, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4,
                "iscrowd": 1, "segmentation": {seg}}}"#
        ))
    };
    let p = tmp.write(
        "instances.json",
        &ann(r#"{"size": [3, 4], "counts": [1, 2, 9]}"#),
    );
    let c = read_coco_json(&p).expect("uncompressed counts");
    assert_eq!(c.annotations[1].bboxes_ignore.len(), 1);
    // the same mask compressed: pycocotools' `mask.encode` writes counts [1, 2, 9] as "129"
    let p = tmp.write(
        "instances.json",
        &ann(r#"{"size": [3, 4], "counts": "129"}"#),
    );
    read_coco_json(&p).expect("compressed counts");
    assert_eq!(
        coco_err(&tmp, &ann(r#"{"size": [4, 3], "counts": [1, 2, 9]}"#)),
        "annotation 7: RLE size [4, 3] does not match the image ([height, width] = [3, 4])"
    );
    assert_eq!(
        coco_err(&tmp, &ann(r#"{"size": [3, 4], "counts": [1, 2, 8]}"#)),
        "annotation 7: RLE counts cover 11 pixels, the image has 3 x 4 = 12"
    );
    assert_eq!(
        coco_err(&tmp, &ann(r#"{"size": [3, 4], "counts": "12"}"#)),
        "annotation 7: RLE counts cover 3 pixels, the image has 3 x 4 = 12"
    );
    assert_eq!(
        coco_err(&tmp, &ann(r#"{"size": [3, 4], "counts": "1 2"}"#)),
        "annotation 7: compressed RLE counts: invalid RLE: byte value 32 at position 1 is below ASCII '0' (48)"
    );
    assert_eq!(
        coco_err(&tmp, &ann(r#"{"counts": [12]}"#)),
        "annotation 7: RLE `size` must be [height, width]"
    );
    assert_eq!(
        coco_err(&tmp, &ann("7")),
        "annotation 7: `segmentation` must be a list of polygons or an RLE object"
    );
}

#[test]
fn coco_rles_written_by_pycocotools_decode_and_cover_their_image() {
    // every RLE of the parity cases (pycocotools-encoded) decodes and covers its image
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/coco_parity");
    let c = read_coco_json(&dir.join("segm_mixed.gt.json")).expect("read");
    let rles: Vec<_> = c
        .masks
        .iter()
        .flatten()
        .flatten()
        .filter(|m| matches!(m, MaskAnnotation::Rle { .. }))
        .collect();
    assert!(!rles.is_empty());
}

/// A VOC training set of one image whose objects are `objects`, built as `train` would
/// (`test_mode` off) or as an evaluation set.
fn voc_dataset(
    dir: &Path,
    objects: &str,
    test_mode: bool,
) -> Result<mona_det::data::DetDataset, String> {
    std::fs::create_dir_all(dir.join("VOC2007/Annotations")).unwrap();
    std::fs::create_dir_all(dir.join("VOC2007/ImageSets/Main")).unwrap();
    std::fs::write(dir.join("VOC2007/Annotations/img1.xml"), voc(objects)).unwrap();
    std::fs::write(dir.join("VOC2007/ImageSets/Main/train.txt"), "img1\n").unwrap();
    let lit = |p: &Path| format!("{:?}", p.display().to_string());
    let text = format!(
        "[d]\ntype = \"VOCDataset\"\nann_file = {}\nimg_prefix = {}\nclasses = [\"dog\", \"person\"]\ntest_mode = {test_mode}\npipeline = [{{ type = \"LoadImageFromFile\" }}]\n",
        lit(&dir.join("VOC2007/ImageSets/Main/train.txt")),
        lit(&dir.join("VOC2007")),
    );
    let cfg = mona_core::config::Config::from_str_at(&text, "configs/test.toml").unwrap();
    mona_det::data::build_det_dataset(&cfg.node("d").unwrap(), false).map_err(|e| e.to_string())
}

#[test]
fn voc_training_refuses_empty_and_inverted_boxes() {
    let tmp = tempfile::tempdir().unwrap();
    let xml = tmp.path().join("VOC2007/Annotations/img1.xml");
    let good = obj("person", ["90", "70", "250", "300"]);
    let cases = [
        (
            obj("dog", ["50", "10", "20", "30"]),
            "`dog` box [50, 10, 20, 30] has xmax 20 <= xmin 50",
        ),
        (
            obj("dog", ["5", "5", "5", "9"]),
            "`dog` box [5, 5, 5, 9] has xmax 5 <= xmin 5",
        ),
        (
            obj("person", ["5", "9", "8", "2"]),
            "`person` box [5, 9, 8, 2] has ymax 2 <= ymin 9",
        ),
    ];
    for (bad, words) in cases {
        let err = voc_dataset(tmp.path(), &(good.clone() + &bad), false)
            .err()
            .expect("training must refuse the box");
        assert!(
            err.contains(&format!("{}: the {words}: an empty or inverted box makes the training loss NaN; fix or remove the object (or mark it difficult)", xml.display())),
            "{err}"
        );
        assert!(err.contains("ann_file"), "{err}");
        // Evaluation keeps boxes as written, like mmdet.
        let ds = voc_dataset(tmp.path(), &(good.clone() + &bad), true).expect("test mode");
        assert_eq!(ds.samples()[0].ann.bboxes.len(), 2);
    }
    // A difficult box is ignored in training, so it may be anything.
    let difficult = "  <object><name>dog</name><difficult>1</difficult><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>\n";
    let ds = voc_dataset(tmp.path(), &(good + difficult), false).expect("difficult is fine");
    assert_eq!(ds.samples()[0].ann.bboxes_ignore.len(), 1);
}

#[test]
fn coco_image_without_file_name_is_named() {
    let tmp = Tmp::new("file_name");
    let text = coco("").replace(r#""file_name": "b.jpg", "#, "");
    assert_eq!(
        coco_err(&tmp, &text),
        "`images[1] (id 2)`: has no `file_name` (the image's file under img_prefix)"
    );
}
