//! `eval-coco`: the 12 statistics as JSON on stdout in pycocotools order, errors naming the
//! file.

use std::process::Command;

const GT: &str = r#"{
  "images": [{"id": 1, "width": 100, "height": 100}],
  "categories": [{"id": 1, "name": "a"}],
  "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40],
                   "area": 1600, "iscrowd": 0}]
}"#;

#[test]
fn prints_twelve_stats_and_names_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt.json");
    let res = dir.path().join("res.json");
    std::fs::write(&gt, GT).unwrap();
    std::fs::write(
        &res,
        r#"[{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9}]"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eval-coco"))
        .args([&gt, &res])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json.as_object().unwrap().len(), 12);
    assert!((json["mAP"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!(text.find("\"mAP\"").unwrap() < text.find("\"AR@100\"").unwrap());
    assert!(json["AR_l@1000"].is_number());

    let out = Command::new(env!("CARGO_BIN_EXE_eval-coco"))
        .args([
            gt.to_str().unwrap(),
            res.to_str().unwrap(),
            "--max-dets",
            "1,10,100",
        ])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["AR@1"].is_number() && json["AR_m@100"].is_number());

    let missing = dir.path().join("nope.json");
    let out = Command::new(env!("CARGO_BIN_EXE_eval-coco"))
        .args([&gt, &missing])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.json"));
}

/// The tool on the committed parity cases of `mona-det/tests/data/coco_parity` (see its
/// `make_cases.py`): boxes with mmdet's caps (the default) and masks with pycocotools' caps,
/// each of the 12 statistics equal to pycocotools' to 1e-6.
#[test]
fn matches_pycocotools_on_committed_cases() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mona-det/tests/data/coco_parity");
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let find = |case: &str, settings: &str| -> Vec<f64> {
        let e = expected
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["case"] == case && e["settings"] == settings)
            .unwrap_or_else(|| panic!("no {case} {settings} in expected.json"));
        e["stats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let runs: [(&str, &str, &[&str], [usize; 3]); 2] = [
        ("bbox_many", "mmdet", &[], [100, 300, 1000]),
        (
            "segm_mixed",
            "pycocotools",
            &["--iou-type", "segm", "--max-dets", "1,10,100"],
            [1, 10, 100],
        ),
    ];
    for (case, settings, extra, caps) in runs {
        let out = Command::new(env!("CARGO_BIN_EXE_eval-coco"))
            .arg(dir.join(format!("{case}.gt.json")))
            .arg(dir.join(format!("{case}.res.json")))
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let names = mona_det::metrics::coco::stat_names(&caps);
        for (name, want) in names.iter().zip(find(case, settings)) {
            let got = json[name.as_str()]
                .as_f64()
                .unwrap_or_else(|| panic!("{case}: no `{name}` in {json}"));
            assert!(
                (got - want).abs() <= 1e-6,
                "{case} {name}: {got}, pycocotools {want}"
            );
        }
    }
}

/// Runs `eval-coco GT RES EXTRA...`, which must fail with exit status 1 and print no
/// statistics; returns its `error:` line.
fn eval_error(gt: &std::path::Path, res: &std::path::Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_eval-coco"))
        .arg(gt)
        .arg(res)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}: {stderr}", res.display());
    assert!(out.stdout.is_empty(), "no statistics on stdout");
    stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or("")
        .to_string()
}

#[test]
fn results_without_scores_or_not_a_list_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt.json");
    std::fs::write(&gt, GT).unwrap();
    let box_ = r#""image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40]"#;
    let cases = [
        (
            format!("[{{{box_}}}]"),
            "result 0 has no `score`".to_string(),
        ),
        (
            format!(r#"[{{{box_}, "score": 0.5}}, {{{box_}, "score": null}}]"#),
            "result 1: `score` must be a finite number, found null".to_string(),
        ),
        (
            format!(r#"[{{{box_}, "score": "high"}}]"#),
            "result 0: `score` must be a finite number, found a string".to_string(),
        ),
        (
            r#"{"not": "a list"}"#.to_string(),
            "the results must be a JSON list of detections, found an object".to_string(),
        ),
        (
            "{}".to_string(),
            "the results must be a JSON list of detections, found an object".to_string(),
        ),
        (
            "[1]".to_string(),
            "result 0 must be an object, found a number".to_string(),
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let res = dir.path().join(format!("res{i}.json"));
        std::fs::write(&res, text).unwrap();
        assert_eq!(
            eval_error(&gt, &res, &[]),
            format!("error: {}: {message}", res.display()),
            "{text}"
        );
    }
}

#[test]
fn garbage_or_wrong_size_rles_name_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt.json");
    std::fs::write(&gt, GT).unwrap();
    let seg = |rle: &str| {
        format!(r#"[{{"image_id": 1, "category_id": 1, "segmentation": {rle}, "score": 0.9}}]"#)
    };
    let cases = [
        (
            seg(r#"{"size": [50, 100], "counts": [5000]}"#),
            "result 0: `segmentation`: RLE size [50, 100] does not match the image ([height, width] = [100, 100])",
        ),
        (
            seg(r#"{"size": [100, 100], "counts": [10, 20]}"#),
            "result 0: `segmentation`: RLE counts cover 30 pixels, the image has 100 x 100 = 10000",
        ),
        (
            // pycocotools' decoder reads each DEL as a run of 15 (it masks the byte's bits).
            seg(r#"{"size": [100, 100], "counts": "\u007f\u007f"}"#),
            "result 0: `segmentation`: RLE counts cover 30 pixels, the image has 100 x 100 = 10000",
        ),
        (
            seg(r#"{"size": [100, 100], "counts": " 1"}"#),
            "result 0: `segmentation`: compressed RLE counts: invalid RLE: byte value 32 at position 0 is below ASCII '0' (48)",
        ),
        (
            seg(r#"{"size": [100, 100]}"#),
            "result 0: `segmentation`: RLE `counts` must be a string or a list",
        ),
    ];
    for (i, (text, message)) in cases.iter().enumerate() {
        let res = dir.path().join(format!("segm{i}.json"));
        std::fs::write(&res, text).unwrap();
        assert_eq!(
            eval_error(&gt, &res, &["--iou-type", "segm"]),
            format!("error: {}: {message}", res.display()),
            "{text}"
        );
    }
    // --max-dets takes the comma-separated form its help shows.
    let help = Command::new(env!("CARGO_BIN_EXE_eval-coco"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--max-dets <SMALL,MEDIUM,LARGEST>"), "{help}");
    assert!(help.contains("[default: 100,300,1000]"), "{help}");
}
