//! Segmentation of a user's own images: mmseg's `init_segmentor` / `inference_segmentor`, and
//! the `infer` tool's segmentation part. Preprocessing is the config's test pipeline, with its
//! test-time augmentation when its `MultiScaleFlipAug` asks for one.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use burn::tensor::Device;
//! use mona_core::config::Config;
//! use mona_core::infer::InferArgs;
//! use mona_seg::inference::SegInferencer;
//!
//! let cfg = Config::from_file("configs/demo/seg_demo_swin_mona_upernet.toml")?;
//! let args = InferArgs {
//!     checkpoint: PathBuf::from("work_dirs/seg_demo_swin_mona_upernet/iter_160.safetensors"),
//!     load_from: None,
//!     out_dir: PathBuf::from("out"),
//!     score_thr: 0.3,
//!     device: Device::flex(),
//! };
//! let segmentor = SegInferencer::from_config(&cfg, &args)?;
//! let labels = segmentor.predict(Path::new("data/seg-demo/images/validation/000.jpg"))?;
//! println!("{}x{} label map", labels.width(), labels.height());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use image::GrayImage;
use mona_core::config::Config;
use mona_core::infer::{InferArgs, InferItem, InferReport, infer_each, model_classes};
use mona_core::task::TaskError;
use mona_core::task_setup::load_for_test;
use mona_data::transforms::{TtaMode, TtaView, build_tta_views};
use mona_data::{Dataset, Pipeline, Results, sample_rng};

use crate::error::SegError;
use crate::segmentor::EncoderDecoder;
use crate::task::{predict_sample, write_overlay};
use crate::tta::merge_views;

/// A trained segmentor with the config's test pipeline, ready for any image.
pub struct SegInferencer {
    model: EncoderDecoder,
    /// The test pipeline's views: one, or several for the config's test-time augmentation.
    views: Vec<TtaView>,
    classes: Vec<String>,
    device: Device,
}

impl SegInferencer {
    /// The model of `cfg` with the checkpoint `test` would load; preprocessing is
    /// `data.test.pipeline`; class names come from the test set (numbered without it).
    pub fn from_config(cfg: &Config, args: &InferArgs) -> Result<Self, TaskError> {
        let device = args.device.clone();
        let model = EncoderDecoder::from_config(&cfg.node("model")?, &device)?;
        let method = model.backbone.method().name().to_string();
        let model = load_for_test(cfg, model, &args.test_args(), &method)?;
        let views = build_tta_views(&cfg.node("data.test.pipeline")?, TtaMode::Config)?;
        let classes = model_classes(&args.checkpoint, model.num_classes(), || {
            crate::dataset::build_concrete(&cfg.node("data.test")?)
                .map(|set| set.classes().to_vec())
        });
        Ok(Self {
            model,
            views,
            classes,
            device,
        })
    }

    /// The class index of every pixel of the image at `path`, at its own size; with the
    /// config's test-time augmentation, from the mean of its views (as `test` does).
    pub fn predict(&self, path: &Path) -> Result<GrayImage, SegError> {
        let load = |pipeline: &Pipeline| -> Result<Results, SegError> {
            Ok(pipeline.apply(Results::new(path), &mut sample_rng(0, 0, 0))?)
        };
        match self.views.as_slice() {
            [plain] => Ok(predict_sample(&self.model, load(&plain.pipeline)?, &self.device)?.0),
            views => Ok(merge_views(&self.model, views, &self.device, load)?.0),
        }
    }

    /// Class names, index = label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The JSON record of a label map: the image, the label map's file, and the pixels of
    /// each class present.
    pub fn record(&self, image: &Path, label_map: &str, labels: &GrayImage) -> serde_json::Value {
        let mut counts = vec![0u64; 256];
        for p in labels.pixels() {
            counts[p.0[0] as usize] += 1;
        }
        let pixels: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| {
                let name = self
                    .classes
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| c.to_string());
                (name, serde_json::json!(n))
            })
            .collect();
        serde_json::json!({
            "image": image,
            "label_map": label_map,
            "width": labels.width(),
            "height": labels.height(),
            "pixels": pixels,
        })
    }

    /// Predicts `item` and writes `<stem>_labels.png` (class index per pixel),
    /// `<stem>.png` (the class colours over the image) and `<stem>.json` into `out_dir`.
    fn write(&self, item: &InferItem<'_>, out_dir: &Path) -> Result<(), SegError> {
        let labels = self.predict(item.path)?;
        let label_file = format!("{}_labels.png", item.stem);
        let label_path = out_dir.join(&label_file);
        labels
            .save(&label_path)
            .map_err(|source| SegError::Encode {
                path: label_path,
                source,
            })?;
        write_overlay(out_dir, item.path, &item.stem, &labels)?;
        let json_path = out_dir.join(format!("{}.json", item.stem));
        let text = serde_json::to_string_pretty(&self.record(item.path, &label_file, &labels))
            .unwrap_or_default();
        mona_core::checkpoint::write_atomic_text(&json_path, &text).map_err(|source| {
            SegError::Write {
                path: json_path,
                source,
            }
        })
    }
}

/// `infer` for segmentation: each image's label map, overlay and record into `args.out_dir`.
pub fn infer_seg(
    cfg: &Config,
    args: &InferArgs,
    images: &[PathBuf],
) -> Result<InferReport, TaskError> {
    let segmentor = SegInferencer::from_config(cfg, args)?;
    args.create_out_dir()?;
    Ok(infer_each(images, |item| {
        Ok(segmentor.write(item, &args.out_dir)?)
    }))
}
