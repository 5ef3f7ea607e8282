use burn::module::Module;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use rayon::prelude::*;
use serde::Deserialize;

use mona_core::backbone::{Backbone, build_backbone};
use mona_core::config::ConfigNode;
use mona_core::nn::Linear;
use mona_core::random::{Shard, shard_ranges};
use mona_core::registry::{BuildError, lookup};

/// `LinearClsHead`: one `fc` layer, init N(0, 0.01), bias 0 (mmcls `normal_init`).
#[derive(Module, Debug)]
pub struct LinearClsHead {
    pub fc: Linear,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinearClsHeadCfg {
    #[serde(rename = "type")]
    _type: String,
    num_classes: usize,
    #[serde(default)]
    in_channels: Option<usize>,
    #[serde(default)]
    loss: Option<LossCfg>,
    /// Accepted for config compatibility; accuracy is always reported as top-1 and top-5.
    #[serde(default, rename = "topk")]
    _topk: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "cal_acc")]
    _cal_acc: Option<bool>,
    /// The head's init is fixed to mmcls' N(0, 0.01).
    #[serde(default, rename = "init_cfg")]
    _init_cfg: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LossCfg {
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default = "one")]
    loss_weight: f64,
    #[serde(default)]
    use_sigmoid: bool,
    #[serde(default)]
    use_soft: bool,
    #[serde(default)]
    reduction: Option<String>,
}

fn one() -> f64 {
    1.0
}

impl LinearClsHead {
    pub fn new(in_channels: usize, num_classes: usize, device: &Device) -> Self {
        Self {
            fc: Linear::normal(in_channels, num_classes, 0.01, device),
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc.forward(x)
    }
}

/// What the neck does to the last backbone feature map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClsNeck {
    /// `GlobalAveragePooling`: spatial mean, `(B, C, H, W)` → `(B, C)`.
    GlobalAveragePooling,
}

mona_core::declare_registry! {
    /// Classification necks, selected by `model.neck.type`.
    pub struct ClsNeckEntry: "neck" => fn(&ConfigNode<'_>) -> Result<ClsNeck, BuildError>;
}
/// Builds a head for `in_channels` input channels; returns it with its loss weight.
pub type ClsHeadBuilder =
    fn(&ConfigNode<'_>, usize, &Device) -> Result<(LinearClsHead, f64), BuildError>;

mona_core::declare_registry! {
    /// Classification heads, selected by `model.head.type`.
    pub struct ClsHeadEntry: "head" => ClsHeadBuilder;
}

fn build_gap(node: &ConfigNode<'_>) -> Result<ClsNeck, BuildError> {
    if let Some(dim) = node.extract_field::<usize>("dim")?
        && dim != 2
    {
        return Err(BuildError::invalid(
            node,
            Some("dim"),
            "only dim = 2 is supported",
        ));
    }
    Ok(ClsNeck::GlobalAveragePooling)
}

fn build_linear_head(
    node: &ConfigNode<'_>,
    in_channels: usize,
    device: &Device,
) -> Result<(LinearClsHead, f64), BuildError> {
    let cfg: LinearClsHeadCfg = node.extract()?;
    if let Some(c) = cfg.in_channels
        && c != in_channels
    {
        return Err(BuildError::invalid(
            node,
            Some("in_channels"),
            format!("{c}, but the backbone's last output has {in_channels} channels"),
        ));
    }
    if cfg.num_classes == 0 {
        return Err(BuildError::invalid(
            node,
            Some("num_classes"),
            "must be positive",
        ));
    }
    let loss_weight = match &cfg.loss {
        Some(l) if l.type_name != "CrossEntropyLoss" || l.use_sigmoid || l.use_soft => {
            return Err(BuildError::invalid(
                node,
                Some("loss"),
                "only softmax CrossEntropyLoss is supported (the official configs use it)",
            ));
        }
        Some(l) if l.reduction.as_deref().is_some_and(|r| r != "mean") => {
            return Err(BuildError::invalid(
                node,
                Some("loss.reduction"),
                "only reduction = \"mean\" is supported",
            ));
        }
        Some(l) => l.loss_weight,
        None => 1.0,
    };
    Ok((
        LinearClsHead::new(in_channels, cfg.num_classes, device),
        loss_weight,
    ))
}

inventory::submit! { ClsNeckEntry::new("GlobalAveragePooling", build_gap) }
inventory::submit! { ClsHeadEntry::new("LinearClsHead", build_linear_head) }

/// `ImageClassifier`: backbone → neck → head. Parameter keys: `backbone.*`, `head.fc.*`.
#[derive(Module, Debug)]
pub struct ImageClassifier {
    pub backbone: Backbone,
    pub head: LinearClsHead,
    #[module(skip)]
    neck: ClsNeck,
    loss_weight: f64,
}

impl ImageClassifier {
    /// Builds the model of a `model` config node.
    pub fn from_config(node: &ConfigNode<'_>, device: &Device) -> Result<Self, BuildError> {
        let backbone = build_backbone(&node.child("backbone")?, device)?;
        let neck = match node.get("neck") {
            Some(n) => (lookup::<ClsNeckEntry>(&n)?.build)(&n)?,
            None => ClsNeck::GlobalAveragePooling,
        };
        let head_node = node.child("head")?;
        let in_channels = *backbone
            .out_channels()
            .last()
            .ok_or_else(|| BuildError::invalid(node, Some("backbone.out_indices"), "no outputs"))?;
        let (head, loss_weight) =
            (lookup::<ClsHeadEntry>(&head_node)?.build)(&head_node, in_channels, device)?;
        Ok(Self {
            backbone,
            head,
            neck,
            loss_weight,
        })
    }

    pub fn num_classes(&self) -> usize {
        self.head.fc.d_out()
    }

    /// Class logits `(B, K)` of normalised images `(B, 3, H, W)`.
    pub fn forward(&self, images: Tensor<4>, training: bool) -> Tensor<2> {
        let feats = self.backbone.forward(images, training);
        let last = feats.into_iter().last().expect("the backbone has outputs");
        let pooled = match self.neck {
            ClsNeck::GlobalAveragePooling => {
                let [b, c, h, w] = last.dims();
                last.reshape([b, c, h * w]).mean_dim(2).reshape([b, c])
            }
        };
        self.head.forward(pooled)
    }

    /// Inference logits of `images`, the batch cut into `shards` consecutive slices that
    /// run at the same time (each sample's logits are those of [`Self::forward`]: nothing
    /// in inference couples samples).
    pub fn forward_sharded(&self, images: Tensor<4>, shards: usize) -> Tensor<2> {
        let [n, _, _, _] = images.dims();
        let slices: Vec<Shard> = shard_ranges(n, shards).collect();
        if slices.len() < 2 {
            return self.forward(images, false);
        }
        let parts: Vec<Tensor<2>> = slices
            .into_par_iter()
            .map(|s| self.forward(images.clone().slice(s.first..s.first + s.len), false))
            .collect();
        Tensor::cat(parts, 0)
    }

    /// Softmax cross entropy (mean over the batch) times the loss weight.
    pub fn loss(&self, logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        cross_entropy(logits, labels) * self.loss_weight
    }

    /// The official rule: backbone keys by the method (plus `frozen_stages`), head trains.
    pub fn trainable(&self, key: &str) -> bool {
        match key.strip_prefix("backbone.") {
            Some(k) => self.backbone.trainable_in_training(k),
            None => true,
        }
    }
}

/// Mean softmax cross entropy of logits `(B, K)` against labels `(B,)`.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [b, _] = logits.dims();
    let logp = log_softmax(logits, 1);
    let picked = logp.gather(1, labels.reshape([b, 1]));
    picked.mean().neg()
}
