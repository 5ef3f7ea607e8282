//! RetinaNet end to end: the shipped demo (configs/demo/det_demo_swin_mona_retinanet.toml on
//! data/det-demo) trains far above the untrained model's mAP, `test` writes COCO-style results
//! and drawings; the official VOC Mona config resolves (datasets, pipeline, model) and trains
//! on a synthetic batch of its real shapes.

mod common;

use common::root;

use burn::module::Module;
use burn::tensor::Device;
use mona_core::config::Config;
use mona_core::params::set_trainable;
use mona_core::registry::find;
use mona_core::runner::{Optimizer, TrainModel};
use mona_core::task::{ModelEntry, TestArgs};
use mona_data::transforms::build_flat_pipeline;
use mona_data::{Dataset, Image, Results, sample_rng};
use mona_det::RetinaNet;
use mona_det::data::build_det_dataset;
use mona_det::task::{build_model, collate};

fn demo_config(extra: &[String]) -> Config {
    common::demo_config("det_demo_swin_mona_retinanet", "det-demo", extra)
}

#[test]
fn demo_trains_far_above_the_untrained_model() {
    let cfg = demo_config(&[]);
    let val = build_det_dataset(&cfg.node("data.val").unwrap(), true).unwrap();
    assert_eq!(val.len(), 3);
    let train = mona_data::build_dataset(&cfg.node("data.train").unwrap()).unwrap();
    assert_eq!(
        train.len(),
        4 * 11,
        "RepeatDataset x4 over 11 trainval tiles"
    );
    let metrics = vec!["mAP".to_string(), "bbox".to_string()];

    // The untrained model (same seed, same initialisation as training starts from).
    let before = common::untrained_metrics::<RetinaNet>(&cfg, &val, &metrics);

    let work = tempfile::tempdir().unwrap();
    let entry = find::<ModelEntry>("RetinaNet").expect("RetinaNet registered");
    let args = common::train_args(work.path());
    let after = (entry.build.train)(&cfg, &args).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "det demo: VOC mAP {:.4} (untrained {:.4}), COCO bbox_mAP {:.4} (untrained {:.4}), bbox_mAP_50 {:.4}",
        after["mAP"], before["mAP"], after["bbox_mAP"], before["bbox_mAP"], after["bbox_mAP_50"]
    );
    // 176 iterations on 11 tiles amplify float rounding: the final mAP moves between about
    // 0.24 and 0.37 with the seed, and with the CPU (gemm's kernels and block sizes depend
    // on its instruction set and caches). An untrained or broken model stays near 0.
    assert!(
        after["mAP"] > before["mAP"] + 0.15 && after["mAP"] > 3.0 * before["mAP"],
        "mAP {after:?} vs untrained {before:?}"
    );
    assert!(
        after["bbox_mAP"] > before["bbox_mAP"],
        "{after:?} vs {before:?}"
    );

    // test: metrics again, COCO-style results, drawings.
    let ckpt = work.path().join("epoch_8.safetensors");
    assert!(ckpt.exists(), "no {}", ckpt.display());
    let show = work.path().join("show");
    let out = work.path().join("results.json");
    let targs = common::test_args(ckpt.clone(), out.clone(), show.clone());
    let tm = (entry.build.test)(&cfg, &targs).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        (tm["mAP"] - after["mAP"]).abs() < 1e-6,
        "{tm:?} vs {after:?}"
    );
    assert_eq!(std::fs::read_dir(&show).unwrap().count(), 3);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let first = &json.as_array().expect("a list")[0];
    for k in ["image_id", "category_id", "bbox", "score"] {
        assert!(first.get(k).is_some(), "{first}");
    }
    // --format-only: the file, no metrics.
    let only = TestArgs {
        format_only: true,
        show_dir: None,
        show_score_thr: mona_det::visualize::SHOW_SCORE_THR,
        ..targs
    };
    assert!((entry.build.test)(&cfg, &only).unwrap().is_empty());
}

#[test]
fn demo_pipeline_keeps_boxes_aligned_and_batches_pad() {
    let cfg = demo_config(&[]);
    let ds = build_det_dataset(&cfg.node("data.train.dataset").unwrap(), false).unwrap();
    let mut flipped = 0;
    let mut batch = Vec::new();
    for i in 0..ds.len() {
        let r = ds.load(i, &mut sample_rng(3, 0, i as u64)).unwrap();
        let raw = &ds.samples()[i].ann;
        assert_eq!(r.gt_bboxes.len(), raw.bboxes.len());
        assert_eq!(r.pad_shape, Some([224, 224, 3]));
        assert_eq!(r.img_shape, [200, 200, 3]);
        let b = r.gt_bboxes[0];
        let o = raw.bboxes[0];
        if r.flip {
            flipped += 1;
            assert_eq!(b, [200.0 - o[2], o[1], 200.0 - o[0], o[3]]);
        } else {
            assert_eq!(b, o);
        }
        batch.push(r);
    }
    assert!(flipped > 0 && flipped < ds.len());
    let b = collate(&batch[..2], &Device::flex()).unwrap();
    assert_eq!(b.images.dims(), [2, 3, 224, 224]);
    assert_eq!(b.metas[0].img_shape, (200, 200));
}

#[test]
fn missing_voc_files_are_named() {
    let cfg = demo_config(&["data.val.data_root=/nonexistent/det-demo/".to_string()]);
    let err = build_det_dataset(&cfg.node("data.val").unwrap(), true)
        .err()
        .expect("missing");
    let msg = err.to_string();
    assert!(
        msg.contains("/nonexistent/det-demo/VOC2007/ImageSets/Main/test.txt"),
        "{msg}"
    );
}

fn official() -> Config {
    let path = root().join("configs/mona/swin-l_voc/voc_retinanet_swin_large_1x_mona.toml");
    Config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A synthetic 500x375 VOC-like sample through the official training pipeline: resized into
/// (1000, 600) keeping the ratio (800x600), padded to 800x608.
fn official_batch(cfg: &Config, device: &Device) -> mona_det::task::DetBatch {
    let pipeline = build_flat_pipeline(&cfg.node("data.train.dataset.pipeline").unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    image::RgbImage::from_fn(500, 375, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    })
    .save(&path)
    .unwrap();
    let mut r = Results::new(&path);
    r.gt_bboxes = vec![[48.0, 240.0, 195.0, 371.0], [8.0, 12.0, 352.0, 370.0]];
    r.gt_labels = vec![11, 14];
    let r = pipeline.apply(r, &mut sample_rng(0, 0, 0)).unwrap();
    assert_eq!(r.img_shape, [600, 800, 3]);
    assert_eq!(r.pad_shape, Some([608, 800, 3]));
    assert!(matches!(r.img, Image::F32 { .. }));
    assert_eq!(r.scale_factor, Some([1.6, 1.6, 1.6, 1.6]));
    collate(&[r], device).unwrap()
}

fn train_steps(cfg: &Config, steps: usize) -> Vec<f32> {
    let device = Device::flex().autodiff();
    device.seed(0);
    let model: RetinaNet = build_model(cfg, &device).unwrap();
    let rules = model.clone();
    let mut model = set_trainable(model, &|k| rules.trainable(k));
    let mut optimizer = Optimizer::from_config(&cfg.node("optimizer").unwrap(), &model, &|k| {
        rules.trainable(k)
    })
    .unwrap();
    let batch = official_batch(cfg, &device);
    let mut losses = Vec::new();
    for _ in 0..steps {
        let l = TrainModel::losses(&model, &batch, true).unwrap_or_else(|e| panic!("{e}"));
        let total: f32 = l.total.clone().into_scalar::<f32>();
        assert!(total.is_finite());
        losses.push(total);
        let grads = burn::optim::GradientsParams::from_grads(l.total.backward(), &model);
        model = optimizer.step(model, grads, None).0;
    }
    let _ = model.valid();
    losses
}

#[test]
fn official_voc_config_resolves() {
    let cfg = official();
    // every pipeline of the config builds (train, and the MultiScaleFlipAug test pipeline)
    for key in [
        "data.train.dataset.pipeline",
        "data.val.pipeline",
        "data.test.pipeline",
    ] {
        build_flat_pipeline(&cfg.node(key).unwrap()).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    // the datasets resolve to VOCDataset behind RepeatDataset; without VOCdevkit the error
    // names the missing list file
    let err = mona_data::build_dataset(&cfg.node("data.train").unwrap())
        .err()
        .expect("no VOCdevkit here");
    assert!(
        err.to_string()
            .contains("VOC2007/ImageSets/Main/trainval.txt"),
        "{err}"
    );
    assert!(find::<ModelEntry>("RetinaNet").is_some());
}

/// The official model (Swin-L + FPN + RetinaHead, 20 classes) on the official pipeline's
/// 800x608 batch. Ignored by default: Swin-L at this size takes minutes on two CPU cores.
#[test]
#[ignore = "Swin-L RetinaNet at 800x608 on the CPU takes minutes"]
fn official_voc_config_trains_two_iterations() {
    let losses = train_steps(&official(), 2);
    eprintln!("losses {losses:?}");
}

/// The official config with the backbone shrunk to a tiny Swin (neck inputs to match), on the
/// same batch: the rest (FPN 256, RetinaHead 4x256 convs, 20 classes, anchors, assigner,
/// AdamW with its paramwise rules) is the official one.
#[test]
fn official_voc_config_with_tiny_swin_trains() {
    let mut cfg = official();
    cfg.apply_options(&[
        "model.backbone.embed_dim=16".to_string(),
        "model.backbone.depths=[1,1,1,1]".to_string(),
        "model.backbone.num_heads=[1,1,2,2]".to_string(),
        "model.neck.in_channels=[32,64,128]".to_string(),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let t = std::time::Instant::now();
    let losses = train_steps(&cfg, 2);
    eprintln!("losses {losses:?} in {:?}", t.elapsed());
}
