//! Classification of a user's own images: mmcls' `init_model` / `inference_model`, and the
//! `infer` tool's classification part.
//!
//! ```no_run
//! use std::path::{Path, PathBuf};
//! use burn::tensor::Device;
//! use mona_core::config::Config;
//! use mona_core::infer::InferArgs;
//! use mona_cls::inference::ClsInferencer;
//!
//! let cfg = Config::from_file("configs/demo/fashion_mnist_swin_mona.toml")?;
//! let args = InferArgs {
//!     checkpoint: PathBuf::from("work_dirs/fashion_mnist_swin_mona/epoch_12.safetensors"),
//!     load_from: None,
//!     out_dir: PathBuf::from("out"),
//!     score_thr: 0.3,
//!     device: Device::flex(),
//! };
//! let classifier = ClsInferencer::from_config(&cfg, &args)?;
//! let p = classifier.predict(Path::new("data/fashion-mnist-mini/images/test/Ankle_boot_00000.png"))?;
//! println!("{} ({:.2})", p.pred_class, p.pred_score);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use burn::tensor::activation::softmax;
use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use mona_core::config::Config;
use mona_core::infer::{InferArgs, InferItem, InferReport, infer_each, model_classes};
use mona_core::task::TaskError;
use mona_data::transforms::build_flat_pipeline;
use mona_data::{Dataset, Pipeline, Results, build_dataset, sample_rng};

use crate::data::collate;
use crate::error::ClsError;
use crate::metrics::top1;
use crate::model::ImageClassifier;
use crate::task::load_for_test;

/// How many classes a record and a drawing list, best first (mmcls' demo shows the top 1;
/// five tell more on a confusable image).
pub const TOP_K: usize = 5;

/// A classifier's answer for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ClsPrediction {
    pub pred_label: usize,
    pub pred_score: f32,
    pub pred_class: String,
    /// Softmax score of every class, index = label.
    pub scores: Vec<f32>,
}

/// A trained classifier with the config's test pipeline, ready for any image.
pub struct ClsInferencer {
    model: ImageClassifier,
    pipeline: Pipeline,
    classes: Vec<String>,
    device: Device,
}

impl ClsInferencer {
    /// The model of `cfg` with the checkpoint `test` would load; preprocessing is
    /// `data.test.pipeline`; class names come from the checkpoint, else the test set
    /// (numbered without either).
    pub fn from_config(cfg: &Config, args: &InferArgs) -> Result<Self, TaskError> {
        let device = args.device.clone();
        let model = load_for_test(cfg, &args.test_args(), &device)?;
        let pipeline = build_flat_pipeline(&cfg.node("data.test.pipeline")?)?;
        let classes = model_classes(&args.checkpoint, model.num_classes(), || {
            build_dataset(&cfg.node("data.test")?)
                .map(|set| Arc::<dyn Dataset>::from(set).classes().to_vec())
        });
        Ok(Self {
            model,
            pipeline,
            classes,
            device,
        })
    }

    /// The class scores of the image at `path`.
    pub fn predict(&self, path: &Path) -> Result<ClsPrediction, ClsError> {
        let r = self
            .pipeline
            .apply(Results::new(path), &mut sample_rng(0, 0, 0))?;
        let b = collate(std::slice::from_ref(&r), &self.device)?;
        let scores: Vec<f32> = softmax(self.model.forward(b.images, false), 1)
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .map_err(|e| ClsError::Readback(format!("{e:?}")))?;
        let (pred_label, pred_score) = top1(&scores);
        Ok(ClsPrediction {
            pred_label,
            pred_score,
            pred_class: self.classes[pred_label].clone(),
            scores,
        })
    }

    /// Class names, index = label.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// The `TOP_K` best `(label, score)`, best first (ties: lower label first).
    pub fn top_k(p: &ClsPrediction) -> Vec<(usize, f32)> {
        let mut ranked: Vec<(usize, f32)> = p.scores.iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(TOP_K);
        ranked
    }

    /// The JSON record of a prediction: `test --out`'s fields (`path`, `pred_label`,
    /// `pred_score`) with the class name and the top classes.
    pub fn record(&self, path: &Path, p: &ClsPrediction) -> serde_json::Value {
        let topk: Vec<serde_json::Value> = Self::top_k(p)
            .into_iter()
            .map(|(l, s)| serde_json::json!({"label": l, "class": self.classes[l], "score": s}))
            .collect();
        serde_json::json!({
            "path": path,
            "pred_label": p.pred_label,
            "pred_score": p.pred_score,
            "pred_class": p.pred_class,
            "topk": topk,
        })
    }

    /// Predicts `item` and writes `<stem>.json` and `<stem>.png` (the image, enlarged to at
    /// least 192 pixels a side, with the top classes and scores) into `out_dir`.
    fn write(&self, item: &InferItem<'_>, out_dir: &Path) -> Result<(), ClsError> {
        let p = self.predict(item.path)?;
        let img = mona_data::read_image(item.path)?;
        let drawn = draw_top_k(img, &Self::top_k(&p), &self.classes);
        let png = out_dir.join(format!("{}.png", item.stem));
        drawn.save(&png).map_err(|e| ClsError::Write {
            path: png.clone(),
            message: e.to_string(),
        })?;
        let json = out_dir.join(format!("{}.json", item.stem));
        let text = serde_json::to_string_pretty(&self.record(item.path, &p)).unwrap_or_default();
        mona_core::checkpoint::write_atomic_text(&json, &text).map_err(|e| ClsError::Write {
            path: json,
            message: e.to_string(),
        })
    }
}

/// `img` enlarged (nearest neighbour) to at least 192 pixels a side, with one `class score`
/// line per entry of `top`, from the top left.
fn draw_top_k(img: RgbImage, top: &[(usize, f32)], classes: &[String]) -> RgbImage {
    let short = img.width().min(img.height()).max(1);
    let scale = 192_u32.div_ceil(short).max(1);
    let mut img = if scale > 1 {
        image::imageops::resize(
            &img,
            img.width() * scale,
            img.height() * scale,
            FilterType::Nearest,
        )
    } else {
        img
    };
    let line = mona_data::draw::GLYPH_H + 4;
    for (i, (l, s)) in top.iter().enumerate() {
        let (bg, fg) = if i == 0 {
            (Rgb([255, 215, 0]), Rgb([0, 0, 0]))
        } else {
            (Rgb([32, 32, 32]), Rgb([255, 255, 255]))
        };
        let y = (i as i64 + 1) * line;
        mona_data::draw::draw_label(&mut img, 2, y, &format!("{} {s:.2}", classes[*l]), bg, fg);
    }
    img
}

/// `infer` for classification: each image's record and drawing into `args.out_dir`.
pub fn infer_cls(
    cfg: &Config,
    args: &InferArgs,
    images: &[PathBuf],
) -> Result<InferReport, TaskError> {
    let classifier = ClsInferencer::from_config(cfg, args)?;
    args.create_out_dir()?;
    Ok(infer_each(images, |item| {
        Ok(classifier.write(item, &args.out_dir)?)
    }))
}
