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
