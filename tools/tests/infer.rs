//! `infer` on the shipped demos: per image a drawing and a JSON record, the records equal to
//! what `test --out` writes for the same images, and bad inputs reported by name while the
//! other images are still processed.

mod common;

use std::path::Path;

use common::{run, workspace};

const DET_DEMO: &str = "configs/demo/det_demo_swin_mona_retinanet.toml";
const SEG_DEMO: &str = "configs/demo/seg_demo_swin_mona_upernet.toml";
const CLS_DEMO: &str = "configs/demo/fashion_mnist_swin_mona.toml";
const INFER: &str = env!("CARGO_BIN_EXE_infer");

/// A checkpoint of `config` trained for `options` (a short run) in `dir`.
fn trained(config: &str, dir: &Path, options: &[&str], checkpoint: &str) -> String {
    let work = dir.join("work");
    common::train_into(config, &work, options);
    work.join(checkpoint).display().to_string()
}

/// A checkpoint of `config` after one epoch.
fn one_epoch(config: &str, dir: &Path) -> String {
    let options = [
        "runner.max_epochs=1",
        "evaluation.interval=1",
        "checkpoint_config.interval=1",
    ];
    trained(config, dir, &options, "epoch_1.safetensors")
}

/// The det demo's test images, in the test set's order.
fn det_test_images() -> Vec<String> {
    let root = workspace().join("data/det-demo/VOC2007");
    std::fs::read_to_string(root.join("ImageSets/Main/test.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|id| format!("data/det-demo/VOC2007/JPEGImages/{}.jpg", id.trim()))
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn stem(image: &str) -> String {
    Path::new(image)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn detection_records_equal_test_out_and_boxes_are_drawn_where_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = one_epoch(DET_DEMO, dir.path());
    let results = dir.path().join("results.json");
    run(
        env!("CARGO_BIN_EXE_test"),
        &[
            DET_DEMO,
            &ckpt,
            "--out",
            results.to_str().unwrap(),
            "--format-only",
        ],
    )
    .ok();

    let images = det_test_images();
    let out = dir.path().join("infer");
    let mut args = vec![DET_DEMO, ckpt.as_str(), "--out-dir", out.to_str().unwrap()];
    args.extend(images.iter().map(String::as_str));
    let done = run(INFER, &args).ok();
    assert!(
        done.stdout
            .contains(&format!("{} image(s) written", images.len())),
        "{}",
        done.stdout
    );

    // The records of every image, in order, are `test --out`'s results file.
    let mut records = Vec::new();
    for image in &images {
        let per_image = json(&out.join(format!("{}.json", stem(image))));
        records.extend(per_image.as_array().unwrap().iter().cloned());
    }
    assert!(!records.is_empty(), "the trained model detects something");
    assert_eq!(serde_json::Value::Array(records), json(&results));

    // Each drawing is the image with a box outline where a record above the threshold says.
    for image in &images {
        let original = image::open(workspace().join(image)).unwrap().to_rgb8();
        let drawn = image::open(out.join(format!("{}.png", stem(image))))
            .unwrap()
            .to_rgb8();
        assert_eq!(drawn.dimensions(), original.dimensions());
        let shown: Vec<[f64; 4]> = json(&out.join(format!("{}.json", stem(image))))
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["score"].as_f64().unwrap() >= 0.3)
            .map(|r| {
                let b: Vec<f64> = r["bbox"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                [b[0], b[1], b[0] + b[2], b[1] + b[3]]
            })
            .collect();
        if shown.is_empty() {
            assert_eq!(drawn, original, "{image}: nothing to draw");
            continue;
        }
        assert_ne!(drawn, original, "{image}: blank drawing");
        // The box's bottom edge, the last row inside it (labels are drawn above its top),
        // changed on most pixels.
        let b = shown[0];
        let y = (b[3].round() as u32 - 1).min(original.height() - 1);
        let (x1, x2) = (
            b[0].round() as u32,
            (b[2].round() as u32 - 1).min(original.width() - 1),
        );
        let changed = (x1..=x2)
            .filter(|&x| drawn.get_pixel(x, y) != original.get_pixel(x, y))
            .count();
        assert!(
            changed * 2 > (x2 - x1 + 1) as usize,
            "{image}: the box {b:?} is not drawn ({changed} of {} pixels)",
            x2 - x1 + 1
        );
    }
}

#[test]
fn bad_inputs_are_named_and_the_other_images_still_processed() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = one_epoch(CLS_DEMO, dir.path());
    let not_image = common::write(dir.path(), "notes.txt.png", "not an image");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let good = "data/fashion-mnist-mini/images/test/Ankle_boot_00000.png";
    let out = dir.path().join("out");
    let failed = run(
        INFER,
        &[
            CLS_DEMO,
            &ckpt,
            "missing.png",
            &not_image,
            good,
            empty.to_str().unwrap(),
            "data/fashion-mnist-mini/images/test/*.gif",
            "--out-dir",
            out.to_str().unwrap(),
        ],
    )
    .failed();
    for (input, why) in [
        ("missing.png", "no such file or folder"),
        (not_image.as_str(), "cannot decode image"),
        (empty.to_str().unwrap(), "the folder holds no image"),
        (
            "data/fashion-mnist-mini/images/test/*.gif",
            "the pattern matches no file",
        ),
    ] {
        assert!(
            failed
                .stderr
                .lines()
                .any(|l| l.contains(input) && l.contains(why)),
            "{input}: {why}\n{}",
            failed.stderr
        );
    }
    assert_eq!(
        failed.error_line(),
        // The inputs that name no image first, then the images that failed.
        format!(
            "error: 4 input(s) failed: missing.png, {}, data/fashion-mnist-mini/images/test/*.gif, {not_image}",
            empty.display()
        )
    );
    assert!(
        failed.stdout.contains("1 image(s) written"),
        "{}",
        failed.stdout
    );
    let record = json(&out.join("Ankle_boot_00000.json"));
    assert_eq!(record["path"], good);
    assert!(out.join("Ankle_boot_00000.png").is_file());

    // A checkpoint of another tuning method is an error naming the file, before any image.
    let lora_config = common::write(
        dir.path(),
        "lora.toml",
        &format!(
            "_base_ = \"{}\"\n[model.backbone.method]\n_delete_ = true\ntype = \"lora\"\n",
            workspace().join(CLS_DEMO).display()
        ),
    );
    let lora = run(
        INFER,
        &[
            &lora_config,
            &ckpt,
            good,
            "--out-dir",
            out.to_str().unwrap(),
        ],
    )
    .failed();
    assert!(lora.error_line().contains(&ckpt), "{}", lora.stderr);

    // An output folder holding an input image is refused: its drawing would overwrite it.
    let inside = dir.path().join("imgs");
    std::fs::create_dir(&inside).unwrap();
    std::fs::copy(workspace().join(good), inside.join("a.png")).unwrap();
    let refused = run(
        INFER,
        &[
            CLS_DEMO,
            &ckpt,
            inside.to_str().unwrap(),
            "--out-dir",
            inside.to_str().unwrap(),
        ],
    )
    .failed();
    assert!(
        refused.error_line().contains("holds the input"),
        "{}",
        refused.stderr
    );
}

#[test]
fn classification_and_segmentation_write_records_pictures_and_label_maps() {
    let dir = tempfile::tempdir().unwrap();
    // Classification: the records' predictions are `test --out`'s for the same images.
    let ckpt = one_epoch(CLS_DEMO, dir.path());
    let preds = dir.path().join("preds.json");
    run(
        env!("CARGO_BIN_EXE_test"),
        &[CLS_DEMO, &ckpt, "--out", preds.to_str().unwrap()],
    )
    .ok();
    let rows = json(&preds);
    let rows = rows["predictions"].as_array().expect("test --out rows");
    let first: Vec<&serde_json::Value> = rows.iter().take(3).collect();
    let images: Vec<String> = first
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    let out = dir.path().join("cls");
    let mut args = vec![CLS_DEMO, ckpt.as_str(), "--out-dir", out.to_str().unwrap()];
    args.extend(images.iter().map(String::as_str));
    run(INFER, &args).ok();
    for (row, image) in first.iter().zip(&images) {
        let record = json(&out.join(format!("{}.json", stem(image))));
        assert_eq!(record["pred_label"], row["pred_label"], "{image}");
        // `test` runs batches, `infer` one image: the same score up to float32 rounding.
        let (a, b) = (
            record["pred_score"].as_f64().unwrap(),
            row["pred_score"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-6, "{image}: {a} vs {b}");
        assert_eq!(record["topk"][0]["label"], row["pred_label"]);
        let drawn = image::open(out.join(format!("{}.png", stem(image)))).unwrap();
        assert!(drawn.width() >= 192 && drawn.height() >= 192);
    }
    // The checkpoint and the adapter file name the classes (mmdet's `meta['CLASSES']`), so
    // a config whose test set cannot be read still names them.
    let names: Vec<String> =
        std::fs::read_to_string(workspace().join("data/fashion-mnist-mini/classes.txt"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
    let adapter = Path::new(&ckpt).with_file_name("adapter_final.safetensors");
    for file in [Path::new(&ckpt), adapter.as_path()] {
        let stored = mona_core::checkpoint::stored_classes(file).unwrap();
        assert_eq!(stored.as_ref(), Some(&names), "{}", file.display());
    }
    let away = dir.path().join("away");
    let mut args = vec![
        CLS_DEMO,
        ckpt.as_str(),
        images[0].as_str(),
        "--out-dir",
        away.to_str().unwrap(),
        "--cfg-options",
        "data.test.classes=missing/classes.txt",
    ];
    let named = run(INFER, &args).ok();
    assert!(!named.stderr.contains("numbering them"), "{}", named.stderr);
    let record = json(&away.join(format!("{}.json", stem(&images[0]))));
    let label = record["pred_label"].as_u64().unwrap() as usize;
    assert_eq!(record["pred_class"], names[label].as_str());
    // a state dict without names falls back to numbering, with a warning
    let bare = dir.path().join("bare.safetensors");
    mona_core::checkpoint::write_safetensors(
        &bare,
        &mona_core::checkpoint::StateDict::read(Path::new(&ckpt))
            .unwrap()
            .tensors
            .into_iter()
            .collect::<Vec<_>>(),
        Default::default(),
    )
    .unwrap();
    args[1] = bare.to_str().unwrap();
    let numbered = run(INFER, &args).ok();
    assert!(
        numbered.stderr.contains("numbering them"),
        "{}",
        numbered.stderr
    );
    let record = json(&away.join(format!("{}.json", stem(&images[0]))));
    assert!(record["pred_class"].as_str().unwrap().starts_with("class "));

    // Segmentation: a label map at the image's size with the model's classes, an overlay,
    // and a record counting the label map's pixels.
    let seg_ckpt = trained(
        SEG_DEMO,
        &dir.path().join("seg"),
        &[
            "runner.max_iters=8",
            "evaluation.interval=8",
            "checkpoint_config.interval=8",
        ],
        "iter_8.safetensors",
    );
    let image = "data/seg-demo/images/validation/000.jpg";
    let out = dir.path().join("seg_out");
    run(
        INFER,
        &[
            SEG_DEMO,
            &seg_ckpt,
            image,
            "--out-dir",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    let original = image::open(workspace().join(image)).unwrap().to_rgb8();
    let labels = image::open(out.join("000_labels.png")).unwrap().to_luma8();
    assert_eq!(labels.dimensions(), original.dimensions());
    assert!(labels.pixels().all(|p| p.0[0] < 4), "4 classes");
    let overlay = image::open(out.join("000.png")).unwrap().to_rgb8();
    assert_eq!(overlay.dimensions(), original.dimensions());
    assert_ne!(overlay, original);
    let record = json(&out.join("000.json"));
    assert_eq!(record["label_map"], "000_labels.png");
    let counted: u64 = record["pixels"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, u64::from(original.width() * original.height()));

    // A config whose test pipeline flips is predicted with its two views, as `test` does.
    let flip = dir.path().join("seg_flip");
    run(
        INFER,
        &[
            SEG_DEMO,
            &seg_ckpt,
            image,
            "--out-dir",
            flip.to_str().unwrap(),
            "--cfg-options",
            "data.test.pipeline.1.flip=true",
        ],
    )
    .ok();
    let flipped = image::open(flip.join("000_labels.png")).unwrap().to_luma8();
    assert_eq!(flipped.dimensions(), original.dimensions());
}
