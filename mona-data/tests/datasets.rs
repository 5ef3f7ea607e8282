//! Dataset readers built from configs: annotation lists, image folders, presets, and the
//! errors a user meets (missing or corrupt images, bad labels, unknown types).

mod common;

use common::{config, lit, pattern, rng, write_png};
use mona_data::datasets::{CustomDataset, scan_image_folder};
use mona_data::transforms::Pipeline;
use mona_data::{Image, build_dataset, read_image};

const PIPELINE: &str = r#"pipeline = [
    { type = "LoadImageFromFile" },
    { type = "CenterCrop", crop_size = 4 },
    { type = "Normalize", mean = [0, 0, 0], std = [1, 1, 1], to_rgb = true },
    { type = "Collect", keys = ["img", "gt_label"] },
]"#;

#[test]
fn image_folder_classes_are_sorted_folder_names() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_png(root, "zebra/b.png", 5, 5, pattern);
    write_png(root, "zebra/a.png", 5, 5, pattern);
    write_png(root, "apple/x.png", 5, 5, pattern);
    write_png(root, "Mango/UPPER.PNG", 5, 5, pattern);
    std::fs::write(root.join("apple/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("stray.png"), "files at the root are not samples").unwrap();

    let (classes, samples) = scan_image_folder(root).unwrap();
    assert_eq!(classes, vec!["Mango", "apple", "zebra"]);
    let got: Vec<(&str, usize)> = samples
        .iter()
        .map(|s| (s.filename.as_str(), s.label))
        .collect();
    assert_eq!(
        got,
        vec![
            ("Mango/UPPER.PNG", 0),
            ("apple/x.png", 1),
            ("zebra/a.png", 2),
            ("zebra/b.png", 2)
        ]
    );

    // CustomDataset without ann_file is exactly this.
    let cfg = config(&format!(
        "[data.train]\ntype = \"CustomDataset\"\ndata_prefix = {}\n{PIPELINE}\n",
        lit(root)
    ));
    let ds = build_dataset(&cfg.node("data.train").unwrap()).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.classes(), ["Mango", "apple", "zebra"]);
    assert_eq!(ds.gt_labels(), vec![0, 1, 2, 2]);
    let r = ds.load(3, &mut rng(0)).unwrap();
    assert_eq!(r.path, root.join("zebra/b.png"));
    assert_eq!(r.gt_label, Some(2));
    assert_eq!(r.ori_shape, [5, 5, 3]);
    assert!(matches!(
        r.img,
        Image::F32 {
            channels: 3,
            height: 4,
            width: 4,
            ..
        }
    ));
}

#[test]
fn empty_image_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cls")).unwrap();
    let err = CustomDataset::from_folder(dir.path(), None, Pipeline::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

#[test]
fn ann_file_dataset_with_preset_classes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_png(root, "jpg/image 01.png", 6, 6, pattern);
    write_png(root, "jpg/image_02.png", 6, 6, pattern);
    let ann = root.join("train2mmcls.txt");
    std::fs::write(&ann, "jpg/image 01.png 101\n\njpg/image_02.png 0\n").unwrap();
    let cfg = config(&format!(
        "[data.train]\ntype = \"OxfordFlowerMona\"\ndata_prefix = {}\nann_file = {}\n{PIPELINE}\n",
        lit(root),
        lit(&ann)
    ));
    let ds = build_dataset(&cfg.node("data.train").unwrap()).unwrap();
    assert_eq!(ds.classes().len(), 102);
    assert_eq!(ds.classes()[101], "101");
    assert_eq!(ds.gt_labels(), vec![101, 0]);
    let r = ds.load(0, &mut rng(0)).unwrap();
    assert_eq!(r.ori_filename, "jpg/image 01.png");
    assert_eq!(r.gt_label, Some(101));
}

#[test]
fn presets_have_the_official_class_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_png(root, "a.png", 4, 4, pattern);
    let ann = root.join("ann.txt");
    std::fs::write(&ann, "a.png 0\n").unwrap();
    for (name, n) in [
        ("OxfordFlowerMona", 102),
        ("OxfordPetMona", 37),
        ("VOCMona", 20),
        ("CustomDataset", 0),
    ] {
        let cfg = config(&format!(
            "[data.test]\ntype = \"{name}\"\ndata_prefix = {}\nann_file = {}\n{PIPELINE}\n",
            lit(root),
            lit(&ann)
        ));
        let ds = build_dataset(&cfg.node("data.test").unwrap()).unwrap();
        assert_eq!(ds.classes().len(), n, "{name}");
    }
    let cfg = config(&format!(
        "[d]\ntype = \"VOCMona\"\ndata_prefix = {}\nann_file = {}\n{PIPELINE}\n",
        lit(root),
        lit(&ann)
    ));
    let ds = build_dataset(&cfg.node("d").unwrap()).unwrap();
    assert_eq!(ds.classes()[0], "aeroplane");
    assert_eq!(ds.classes()[19], "tvmonitor");
}

#[test]
fn classes_from_list_or_file_override_presets() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_png(root, "a.png", 4, 4, pattern);
    let ann = root.join("ann.txt");
    std::fs::write(&ann, "a.png 1\n").unwrap();
    let class_file = root.join("classes.txt");
    std::fs::write(&class_file, "cat\ndog\n").unwrap();
    for classes in ["[\"cat\", \"dog\"]".to_string(), lit(&class_file)] {
        let cfg = config(&format!(
            "[d]\ntype = \"VOCMona\"\ndata_prefix = {}\nann_file = {}\nclasses = {classes}\n{PIPELINE}\n",
            lit(root),
            lit(&ann)
        ));
        let ds = build_dataset(&cfg.node("d").unwrap()).unwrap();
        assert_eq!(ds.classes(), ["cat", "dog"]);
    }
}

#[test]
fn label_out_of_range_at_build_names_config_key_ann_file_line_and_label() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ann = root.join("test2mmcls.txt");
    std::fs::write(&ann, "a.png 3\nb.png 20\n").unwrap();
    let cfg = config(&format!(
        "[data.val]\ntype = \"VOCMona\"\ndata_prefix = {}\nann_file = {}\n{PIPELINE}\n",
        lit(root),
        lit(&ann)
    ));
    let err = build_dataset(&cfg.node("data.val").unwrap())
        .err()
        .unwrap()
        .to_string();
    for needle in [
        "configs/test.toml",
        "data.val.ann_file",
        &format!("{}:2", ann.display()),
        "label 20",
        "20 classes",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in {err}");
    }
}

#[test]
fn empty_ann_file_at_build_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ann = dir.path().join("train.txt");
    std::fs::write(&ann, "").unwrap();
    let cfg = config(&format!(
        "[d]\ntype = \"CustomDataset\"\ndata_prefix = {}\nann_file = {}\n{PIPELINE}\n",
        lit(dir.path()),
        lit(&ann)
    ));
    let err = build_dataset(&cfg.node("d").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&ann.display().to_string()), "{err}");
}

#[test]
fn missing_and_corrupt_images_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("corrupt.jpg"),
        b"\xff\xd8\xff\xe0 definitely not a jpeg",
    )
    .unwrap();
    std::fs::write(root.join("text.png"), b"hello").unwrap();
    let ann = root.join("ann.txt");
    std::fs::write(&ann, "missing.png 0\ncorrupt.jpg 0\ntext.png 0\n").unwrap();
    let cfg = config(&format!(
        "[d]\ntype = \"CustomDataset\"\ndata_prefix = {}\nann_file = {}\n{PIPELINE}\n",
        lit(root),
        lit(&ann)
    ));
    let ds = build_dataset(&cfg.node("d").unwrap()).unwrap();
    for (idx, name) in [(0, "missing.png"), (1, "corrupt.jpg"), (2, "text.png")] {
        let err = ds.load(idx, &mut rng(0)).unwrap_err().to_string();
        assert!(
            err.contains(&root.join(name).display().to_string()),
            "{err}"
        );
    }
    assert!(ds.load(3, &mut rng(0)).is_err());
}

#[test]
fn unknown_dataset_type_names_file_key_and_close_names() {
    let cfg = config(&format!(
        "[data.train]\ntype = \"OxfordFlowerMonna\"\ndata_prefix = 'x'\n{PIPELINE}\n"
    ));
    let err = build_dataset(&cfg.node("data.train").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("configs/test.toml") && err.contains("data.train.type"),
        "{err}"
    );
    assert!(err.contains("did you mean OxfordFlowerMona"), "{err}");
}

#[test]
fn unknown_dataset_argument_is_an_error() {
    let cfg = config(&format!(
        "[d]\ntype = \"CustomDataset\"\ndata_prefix = 'x'\nann_fil = 'y'\n{PIPELINE}\n"
    ));
    let err = build_dataset(&cfg.node("d").unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("ann_fil"), "{err}");
}

#[test]
fn decoding_converts_everything_to_rgb8() {
    let dir = tempfile::tempdir().unwrap();
    let gray = dir.path().join("gray.png");
    image::GrayImage::from_fn(3, 2, |x, _| image::Luma([x as u8 * 50]))
        .save(&gray)
        .unwrap();
    let img = read_image(&gray).unwrap();
    assert_eq!(img.get_pixel(2, 1).0, [100, 100, 100]);

    let rgba = dir.path().join("rgba.png");
    image::RgbaImage::from_fn(2, 2, |_, _| image::Rgba([10, 20, 30, 0]))
        .save(&rgba)
        .unwrap();
    assert_eq!(read_image(&rgba).unwrap().get_pixel(0, 0).0, [10, 20, 30]);

    let deep = dir.path().join("deep.png");
    image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(2, 2, |_, _| {
        image::Rgb([0x12ff, 0xff00, 0x00ff])
    })
    .save(&deep)
    .unwrap();
    assert_eq!(
        read_image(&deep).unwrap().get_pixel(1, 1).0,
        [0x12, 0xff, 0x00]
    );

    let jpg = dir.path().join("a.jpg");
    image::RgbImage::from_fn(8, 8, |_, _| image::Rgb([200, 100, 50]))
        .save(&jpg)
        .unwrap();
    let img = read_image(&jpg).unwrap();
    assert_eq!(img.dimensions(), (8, 8));
    let p = img.get_pixel(4, 4).0;
    assert!((i32::from(p[0]) - 200).abs() <= 3, "{p:?}");
}
