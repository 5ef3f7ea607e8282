//! mmseg `EncoderDecoder`: backbone → `decode_head` (+ `auxiliary_head` while training),
//! losses on logits resized to the label size, `whole` / `slide` inference.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::Deserialize;

use mona_core::backbone::{Backbone, build_backbone};
use mona_core::config::ConfigNode;
use mona_core::nn::BatchNorm2d;
use mona_core::ops::cross_entropy::{CeReduction, pixel_cross_entropy};
use mona_core::ops::resize::bilinear;
use mona_core::registry::BuildError;
use mona_core::runner::Losses;

use crate::decode_head::{DecodeHead, build_head};
use crate::heads::HeadCfg;

/// `test_cfg`: `whole` or `slide` with `crop_size` and `stride` (`[h, w]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TestCfg {
    #[serde(default = "whole")]
    pub mode: String,
    #[serde(default)]
    pub crop_size: Option<[usize; 2]>,
    #[serde(default)]
    pub stride: Option<[usize; 2]>,
}

fn whole() -> String {
    "whole".into()
}

impl Default for TestCfg {
    fn default() -> Self {
        Self {
            mode: whole(),
            crop_size: None,
            stride: None,
        }
    }
}

/// Loss settings of one head.
#[derive(Debug, Clone, Copy)]
struct HeadLoss {
    weight: f64,
    ignore_index: i64,
    reduction: CeReduction,
}

impl HeadLoss {
    fn of(cfg: &HeadCfg) -> Self {
        Self {
            weight: cfg.loss_weight(),
            ignore_index: cfg.ignore_index,
            reduction: if cfg.avg_non_ignore() {
                CeReduction::MeanNonIgnored
            } else {
                CeReduction::MeanAll
            },
        }
    }
}

/// A training / evaluation batch: normalised images `(B, 3, H, W)` and labels `(B, H, W)`
/// (255 = ignore).
#[derive(Debug, Clone)]
pub struct SegBatch {
    pub images: Tensor<4>,
    pub labels: Option<Tensor<3, Int>>,
    pub paths: Vec<std::path::PathBuf>,
}

/// `EncoderDecoder`. Parameter keys: `backbone.*`, `decode_head.*`, `auxiliary_head.*`.
#[derive(Module, Debug)]
pub struct EncoderDecoder {
    pub backbone: Backbone,
    pub decode_head: DecodeHead,
    pub auxiliary_head: Option<DecodeHead>,
    #[module(skip)]
    decode_loss: HeadLoss,
    #[module(skip)]
    aux_loss: Option<HeadLoss>,
    #[module(skip)]
    test_cfg: TestCfg,
    num_classes: usize,
}

impl EncoderDecoder {
    /// Builds the model of a `model` config node.
    pub fn from_config(node: &ConfigNode<'_>, device: &Device) -> Result<Self, BuildError> {
        let backbone = build_backbone(&node.child("backbone")?, device)?;
        let out_channels = backbone.out_channels();
        let dnode = node.child("decode_head")?;
        let (decode_head, dcfg) = build_head(&dnode, device)?;
        check_channels(&dnode, &dcfg, &out_channels)?;
        let (auxiliary_head, aux_loss) = match node.get("auxiliary_head") {
            Some(anode) => {
                let (h, acfg) = build_head(&anode, device)?;
                check_channels(&anode, &acfg, &out_channels)?;
                if acfg.num_classes != dcfg.num_classes {
                    return Err(BuildError::invalid(
                        &anode,
                        Some("num_classes"),
                        format!(
                            "{} but decode_head has {}",
                            acfg.num_classes, dcfg.num_classes
                        ),
                    ));
                }
                (Some(h), Some(HeadLoss::of(&acfg)))
            }
            None => (None, None),
        };
        let test_cfg: TestCfg = match node.get("test_cfg") {
            Some(t) => t.extract()?,
            None => TestCfg::default(),
        };
        if test_cfg.mode != "whole" && test_cfg.mode != "slide" {
            return Err(BuildError::invalid(
                node,
                Some("test_cfg.mode"),
                format!("{}: expected \"whole\" or \"slide\"", test_cfg.mode),
            ));
        }
        if test_cfg.mode == "slide" && (test_cfg.crop_size.is_none() || test_cfg.stride.is_none()) {
            return Err(BuildError::invalid(
                node,
                Some("test_cfg"),
                "slide inference needs crop_size and stride",
            ));
        }
        Ok(Self {
            backbone,
            decode_head,
            auxiliary_head,
            decode_loss: HeadLoss::of(&dcfg),
            aux_loss,
            test_cfg,
            num_classes: dcfg.num_classes,
        })
    }

    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    pub fn test_cfg(&self) -> &TestCfg {
        &self.test_cfg
    }

    /// Overrides the inference mode (tests, demos).
    pub fn set_test_cfg(&mut self, cfg: TestCfg) {
        self.test_cfg = cfg;
    }

    /// Decode-head logits at the input resolution (`encode_decode`).
    pub fn encode_decode(&self, images: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = images.dims();
        let feats = self.backbone.forward(images, false);
        bilinear(self.decode_head.forward(&feats, false), [h, w])
    }

    /// Training losses: `decode.loss_seg` and `aux.loss_seg` (already weighted).
    pub fn losses(&self, images: Tensor<4>, labels: Tensor<3, Int>, training: bool) -> Losses {
        let [_, h, w] = labels.dims();
        let feats = self.backbone.forward(images, training);
        let head_loss = |logits: Tensor<4>, l: HeadLoss| {
            let logits = bilinear(logits, [h, w]);
            pixel_cross_entropy(logits, labels.clone(), l.ignore_index, l.reduction) * l.weight
        };
        let decode = head_loss(self.decode_head.forward(&feats, training), self.decode_loss);
        let mut parts = vec![("decode.loss_seg".to_string(), decode.clone())];
        let mut total = decode;
        if let (Some(aux), Some(l)) = (&self.auxiliary_head, self.aux_loss) {
            let a = head_loss(aux.forward(&feats, training), l);
            total = total + a.clone();
            parts.push(("aux.loss_seg".to_string(), a));
        }
        Losses { total, parts }
    }

    /// Logits `(B, K, H, W)` of the (resized) input by the configured mode.
    pub fn inference(&self, images: Tensor<4>) -> Tensor<4> {
        match (
            self.test_cfg.mode.as_str(),
            self.test_cfg.crop_size,
            self.test_cfg.stride,
        ) {
            ("slide", Some(crop), Some(stride)) => self.slide_inference(images, crop, stride),
            _ => self.encode_decode(images),
        }
    }

    /// mmseg `slide_inference`: overlapping crops, logits summed and divided by the count.
    pub fn slide_inference(
        &self,
        images: Tensor<4>,
        crop: [usize; 2],
        stride: [usize; 2],
    ) -> Tensor<4> {
        let [b, _, h, w] = images.dims();
        let [hc, wc] = crop;
        let [hs, ws] = [stride[0].max(1), stride[1].max(1)];
        let grids = |size: usize, c: usize, s: usize| size.saturating_sub(c).div_ceil(s) + 1;
        let device = images.device();
        let mut preds = Tensor::<4>::zeros([b, self.num_classes, h, w], &device);
        let mut count = Tensor::<4>::zeros([1, 1, h, w], &device);
        for hi in 0..grids(h, hc, hs) {
            for wi in 0..grids(w, wc, ws) {
                let y2 = (hi * hs + hc).min(h);
                let x2 = (wi * ws + wc).min(w);
                let y1 = y2.saturating_sub(hc);
                let x1 = x2.saturating_sub(wc);
                let crop_img = images.clone().slice([0..b, 0..3, y1..y2, x1..x2]);
                let logits = self.encode_decode(crop_img);
                let region = [0..b, 0..self.num_classes, y1..y2, x1..x2];
                let cur = preds.clone().slice(region.clone());
                preds = preds.slice_assign(region, cur + logits);
                let c = count.clone().slice([0..1, 0..1, y1..y2, x1..x2]);
                count = count.slice_assign([0..1, 0..1, y1..y2, x1..x2], c + 1.0);
            }
        }
        preds / count
    }

    /// Backbone keys by the method (plus `frozen_stages`); head parameters train, BN running
    /// statistics never do.
    pub fn trainable(&self, key: &str) -> bool {
        if BatchNorm2d::is_buffer(key) {
            return false;
        }
        match key.strip_prefix("backbone.") {
            Some(k) => self.backbone.trainable_in_training(k),
            None => true,
        }
    }

    /// The official counting rule (`count-params`): as `trainable`, without `frozen_stages`.
    pub fn counted_trainable(&self, key: &str) -> bool {
        if BatchNorm2d::is_buffer(key) {
            return false;
        }
        match key.strip_prefix("backbone.") {
            Some(k) => self.backbone.trainable(k),
            None => true,
        }
    }
}

fn check_channels(
    node: &ConfigNode<'_>,
    cfg: &HeadCfg,
    out_channels: &[usize],
) -> Result<(), BuildError> {
    for (c, i) in cfg
        .in_channels
        .to_vec()
        .into_iter()
        .zip(cfg.in_index.to_vec())
    {
        match out_channels.get(i) {
            Some(&o) if o == c => {}
            Some(&o) => {
                return Err(BuildError::invalid(
                    node,
                    Some("in_channels"),
                    format!("{c} for in_index {i}, but the backbone output {i} has {o} channels"),
                ));
            }
            None => {
                return Err(BuildError::invalid(
                    node,
                    Some("in_index"),
                    format!("{i}, but the backbone has {} outputs", out_channels.len()),
                ));
            }
        }
    }
    Ok(())
}
