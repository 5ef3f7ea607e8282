//! The shipped demo (configs/demo/seg_demo_swin_mona_upernet.toml on data/seg-demo): a short
//! CPU run clearly beats the trivial all-background prediction; `test --show-dir` writes the
//! overlays; bad inputs fail with errors naming the file.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mona_core::config::Config;
use mona_core::registry::find;
use mona_core::runner::{AllReduce, DataParallel};
use mona_core::task::{ModelEntry, TestArgs, TrainArgs};
use mona_seg::dataset::build_concrete;
use mona_seg::metrics::SegStats;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn demo_config(extra: &[String]) -> Config {
    let mut cfg = Config::from_file(root().join("configs/demo/seg_demo_swin_mona_upernet.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let data = root().join("data/seg-demo");
    let mut opts: Vec<String> = ["train", "val", "test"]
        .iter()
        .map(|s| format!("data.{s}.data_root={}", data.display()))
        .collect();
    opts.extend(extra.iter().cloned());
    cfg.apply_options(&opts).unwrap_or_else(|e| panic!("{e}"));
    cfg
}

/// A fresh CPU training run into `work`.
fn train_args(work: &Path, seed: u64, no_validate: bool, parallel: DataParallel) -> TrainArgs {
    TrainArgs {
        seed,
        no_validate,
        parallel,
        ..TrainArgs::new(work, Device::flex())
    }
}

/// mIoU of predicting background everywhere on the validation split.
fn all_background_miou(cfg: &Config) -> f64 {
    let ds = build_concrete(&cfg.node("data.val").unwrap()).unwrap();
    let mut stats = SegStats::new(4);
    for i in 0..ds.samples().len() {
        let gt = ds.gt(i).unwrap();
        let pred = vec![0u8; gt.as_raw().len()];
        stats.add(&pred, gt.as_raw(), 255);
    }
    stats.metrics(&[])["mIoU"]
}

#[test]
fn demo_beats_all_background_and_writes_overlays() {
    let cfg = demo_config(&[]);
    let baseline = all_background_miou(&cfg);
    let work = tempfile::tempdir().unwrap();
    let entry = find::<ModelEntry>("EncoderDecoder").expect("EncoderDecoder registered");
    let args = train_args(work.path(), 0, false, DataParallel::default());
    let metrics = (entry.build.train)(&cfg, &args).unwrap_or_else(|e| panic!("{e}"));
    let miou = metrics["mIoU"];
    eprintln!(
        "seg demo: mIoU {miou:.2} (all-background {baseline:.2}), mAcc {:.2}, aAcc {:.2}",
        metrics["mAcc"], metrics["aAcc"]
    );
    assert!(
        miou > 1.5 * baseline && miou > baseline + 12.0,
        "mIoU {miou:.2} vs all-background {baseline:.2}"
    );

    // test --show-dir on the trained checkpoint.
    let ckpt = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("iter_") && n.ends_with(".safetensors")
        })
        .expect("a checkpoint");
    let show = work.path().join("show");
    let targs = TestArgs {
        checkpoint: ckpt,
        load_from: None,
        metrics: vec![],
        out: None,
        show_dir: Some(show.clone()),
        show_score_thr: 0.3,
        format_only: false,
        eval_options: Default::default(),
        aug_test: false,
        device: Device::flex(),
        process: None,
    };
    let tm = (entry.build.test)(&cfg, &targs).unwrap_or_else(|e| panic!("{e}"));
    assert!((tm["mIoU"] - miou).abs() < 1e-6, "{tm:?} vs {metrics:?}");
    let pngs = std::fs::read_dir(&show).unwrap().count();
    assert_eq!(pngs, 16);
}

fn copy_demo(to: &Path) {
    for split in ["images/training", "annotations/training"] {
        let dst = to.join(split);
        std::fs::create_dir_all(&dst).unwrap();
        for name in ["000", "001"] {
            let ext = if split.starts_with("images") {
                "jpg"
            } else {
                "png"
            };
            std::fs::copy(
                root()
                    .join("data/seg-demo")
                    .join(split)
                    .join(format!("{name}.{ext}")),
                dst.join(format!("{name}.{ext}")),
            )
            .unwrap();
        }
    }
}

fn load_first(data_root: &Path) -> Result<(), String> {
    let cfg = demo_config(&[format!("data.train.data_root={}", data_root.display())]);
    let ds = build_concrete(&cfg.node("data.train").unwrap()).map_err(|e| e.to_string())?;
    let mut rng = mona_data::sample_rng(0, 0, 0);
    use mona_data::Dataset;
    ds.load(0, &mut rng).map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn bad_inputs_name_the_file() {
    // missing annotation folder
    let dir = tempfile::tempdir().unwrap();
    copy_demo(dir.path());
    std::fs::remove_dir_all(dir.path().join("annotations/training")).unwrap();
    let e = load_first(dir.path()).unwrap_err();
    assert!(e.contains("annotations/training"), "{e}");

    // label map size differs from the image
    let dir = tempfile::tempdir().unwrap();
    copy_demo(dir.path());
    let ann = dir.path().join("annotations/training/000.png");
    image::GrayImage::new(10, 12).save(&ann).unwrap();
    let e = load_first(dir.path()).unwrap_err();
    assert!(e.contains("000.jpg") && e.contains("10x12"), "{e}");

    // label value above the class count (4 classes; 255 is fine)
    let mut g = image::GrayImage::from_pixel(64, 64, image::Luma([255]));
    g.put_pixel(3, 3, image::Luma([7]));
    g.save(&ann).unwrap();
    let e = load_first(dir.path()).unwrap_err();
    assert!(e.contains("000.png") && e.contains("label value 7"), "{e}");
}

/// `train --gpus 2` on the CPU through the whole segmentation task: two replicas on their
/// own threads (SyncBN heads as in the official ADE20K configs, random crops, dropout) run
/// to the end and stay in step.
#[test]
fn data_parallel_demo_run_keeps_replicas_in_step() {
    let cfg = demo_config(&[
        "runner.max_iters=4".into(),
        "checkpoint_config.interval=4".into(),
        "evaluation.interval=1000".into(),
        "model.decode_head.norm_cfg.type=SyncBN".into(),
        "model.auxiliary_head.norm_cfg.type=SyncBN".into(),
    ]);
    let work = tempfile::tempdir().unwrap();
    let entry = find::<ModelEntry>("EncoderDecoder").expect("EncoderDecoder registered");
    let parallel = DataParallel {
        replicas: vec![Device::flex()],
        all_reduce: AllReduce::Host,
    };
    let args = train_args(work.path(), 3, true, parallel);
    let metrics = (entry.build.train)(&cfg, &args).unwrap_or_else(|e| panic!("{e}"));
    assert!(metrics["mIoU"].is_finite());
    let log = std::fs::read_to_string(work.path().join("log.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last_train = records.iter().rfind(|r| r["mode"] == "train").unwrap();
    assert_eq!(last_train["iter"], 4);
    assert!(last_train["loss"].as_f64().unwrap().is_finite());
    let replicas = records.iter().find(|r| r["mode"] == "replicas").unwrap();
    assert_eq!(replicas["devices"], 2);
    assert_eq!(replicas["max_diff"], 0.0, "replicas drifted apart");
}
