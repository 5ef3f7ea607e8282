//! Detection on a user's own images: mmdet's `init_detector` / `inference_detector`, and the
//! `infer` tool's detection part.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use burn::tensor::Device;
//! use mona_core::config::Config;
//! use mona_core::infer::InferArgs;
//! use mona_det::RetinaNet;
//! use mona_det::inference::DetInferencer;
//!
//! let cfg = Config::from_file("configs/demo/det_demo_swin_mona_retinanet.toml")?;
//! let args = InferArgs {
//!     checkpoint: PathBuf::from("work_dirs/det_demo_swin_mona_retinanet/epoch_8.safetensors"),
//!     load_from: None,
//!     out_dir: PathBuf::from("out"),
//!     score_thr: 0.3,
//!     device: Device::flex(),
//! };
//! let detector = DetInferencer::<RetinaNet>::from_config(&cfg, &args)?;
//! let dets = detector.predict(Path::new("data/det-demo/VOC2007/JPEGImages/2019_YELL_2_541000_4977000_image_crop_0_0.jpg"))?;
//! for ((b, s), l) in dets.bboxes.iter().zip(&dets.scores).zip(&dets.labels) {
//!     println!("{} {s:.2} {b:?}", detector.classes()[*l]);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use mona_core::config::Config;
use mona_core::infer::{InferArgs, InferItem, InferReport, infer_each, model_classes};
use mona_core::task::TaskError;
use mona_core::task_setup::load_for_test;
use mona_data::transforms::TtaMode;
use mona_data::{Dataset, Results, sample_rng};

use crate::data::build_det_dataset;
use crate::detector::Detector;
use crate::error::DetError;
use crate::results::{box_records, mask_records, write_json};
use crate::retina::Detections;
use crate::task::build_model;
use crate::tta::DetTestViews;
use crate::visualize::draw_detections;

/// A trained detector with the config's test pipeline, ready for any image.
pub struct DetInferencer<M: Detector> {
    model: M,
    /// `data.test.pipeline`'s views (one, or the test-time augmentation it asks for).
    views: DetTestViews,
    classes: Vec<String>,
    /// The test set's COCO category id per label, so that records equal `test --out`'s.
    cat_ids: Vec<u64>,
    device: Device,
}

impl<M: Detector> DetInferencer<M> {
    /// The model of `cfg` with the checkpoint `test` would load; preprocessing is
    /// `data.test.pipeline`, with the test-time augmentation it asks for. Class names come
    /// from the checkpoint, else the test set's annotations, else are numbered; COCO category
    /// ids from the annotations, else `1..=num_classes`.
    pub fn from_config(cfg: &Config, args: &InferArgs) -> Result<Self, TaskError> {
        let device = args.device.clone();
        let model: M = build_model(cfg, &device)?;
        let method = model.method_name();
        let model = load_for_test(cfg, model, &args.test_args(), &method)?;
        let views = DetTestViews::build(&cfg.node("data.test.pipeline")?, TtaMode::Config)?;
        let (num_classes, _) = model.num_classes();
        let test_set = build_det_dataset(&cfg.node("data.test")?, true);
        let cat_ids = match &test_set {
            Ok(set) if set.cat_ids().len() == num_classes => set.cat_ids().to_vec(),
            _ => (1..=num_classes as u64).collect(),
        };
        let classes = model_classes(&args.checkpoint, num_classes, || {
            test_set.map(|set| set.classes().to_vec())
        });
        Ok(Self {
            model,
            views,
            classes,
            cat_ids,
            device,
        })
    }

    /// The detections of the image at `path`, in its own pixel coordinates.
    pub fn predict(&self, path: &Path) -> Result<Detections, DetError> {
        self.views.predict(
            &self.model,
            |pipeline| pipeline.apply(Results::new(path), &mut sample_rng(0, 0, 0)),
            &self.device,
        )
    }

    /// Class names, index = label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The COCO-style records of one image's detections, as `test --out` writes them: the
    /// boxes, and for a model with a mask head the masks (mmdet's `.segm.json`).
    pub fn records(
        &self,
        image_id: u64,
        dets: &Detections,
    ) -> (serde_json::Value, Option<serde_json::Value>) {
        let boxes = serde_json::Value::Array(box_records(image_id, dets, &self.cat_ids));
        let masks = (!dets.masks.is_empty())
            .then(|| serde_json::Value::Array(mask_records(image_id, dets, &self.cat_ids)));
        (boxes, masks)
    }

    /// Predicts `item` and writes `<stem>.json` (and `<stem>.segm.json` with masks) and the
    /// drawing `<stem>.png` (boxes scoring at least `score_thr`) into `out_dir`.
    fn write(&self, item: &InferItem<'_>, out_dir: &Path, score_thr: f32) -> Result<(), DetError> {
        let dets = self.predict(item.path)?;
        let (boxes, masks) = self.records(item.image_id, &dets);
        write_json(&out_dir.join(format!("{}.json", item.stem)), &boxes)?;
        if let Some(masks) = masks {
            write_json(&out_dir.join(format!("{}.segm.json", item.stem)), &masks)?;
        }
        draw_detections(
            out_dir,
            item.path,
            &item.stem,
            &dets,
            &self.classes,
            score_thr,
        )?;
        Ok(())
    }
}

/// `infer` for any detector: each image's records and drawing into `args.out_dir`.
pub fn infer_det<M: Detector>(
    cfg: &Config,
    args: &InferArgs,
    images: &[PathBuf],
) -> Result<InferReport, TaskError> {
    let detector = DetInferencer::<M>::from_config(cfg, args)?;
    args.create_out_dir()?;
    Ok(infer_each(images, |item| {
        Ok(detector.write(item, &args.out_dir, args.score_thr)?)
    }))
}
