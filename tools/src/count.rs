//! Parameter counts of a model, part by part, with the official trainable share.
//!
//! The official `tools/train.py` prints `my_module_num / (backbone_num − my_module_num)`: the
//! trainable backbone parameters relative to the *original* backbone, i.e. without what the
//! method added. A part therefore reports its total, its trainable parameters under
//! the method's rule, and how many parameters the method added (keys containing
//! [`ADDED_MARKERS`]).
//!
//! The backbone is counted by the method's rule; the parts after it (necks, heads) come from
//! the model's registration (`TaskFns::parts`), so a model registered by a plugin is counted
//! too. Heads are trainable in addition in every method.

use burn::tensor::Device;
use mona_core::backbone::{Backbone, build_backbone};
use mona_core::config::Config;
use mona_core::params::{ParamCount, ParamInfo, count, param_infos};
use mona_core::registry::lookup;
use mona_core::task::ModelEntry;
use serde_json::json;

use crate::ToolError;
use crate::keys::{KeyGroup, group_keys, thousands};
use crate::methods::display_name;

/// Substrings of keys that a method adds to the backbone: adapter slots and LoRA factors.
pub const ADDED_MARKERS: [&str; 2] = ["my_module", "lora_"];

/// A model part whose parameters can be counted.
pub trait CountedPart {
    /// `backbone`, `neck`, `head`, ...
    fn name(&self) -> &str;
    /// Every parameter, by official key.
    fn param_infos(&self) -> Vec<ParamInfo>;
    /// Total parameters and those the official rule trains.
    fn count(&self) -> ParamCount;
    /// The official rule for one key.
    fn trainable(&self, key: &str) -> bool;
    /// The rule during training (e.g. minus `frozen_stages`).
    fn trainable_in_training(&self, key: &str) -> bool {
        self.trainable(key)
    }
    /// Whether the key belongs to something the tuning method added.
    fn is_added(&self, key: &str) -> bool {
        let _ = key;
        false
    }
}

/// The backbone as a [`CountedPart`].
pub struct BackbonePart<'a>(pub &'a Backbone);

impl CountedPart for BackbonePart<'_> {
    fn name(&self) -> &str {
        "backbone"
    }
    fn param_infos(&self) -> Vec<ParamInfo> {
        param_infos(self.0)
    }
    fn count(&self) -> ParamCount {
        count(self.0, &|k| self.0.trainable(k))
    }
    fn trainable(&self, key: &str) -> bool {
        self.0.trainable(key)
    }
    fn trainable_in_training(&self, key: &str) -> bool {
        self.0.trainable_in_training(key)
    }
    fn is_added(&self, key: &str) -> bool {
        ADDED_MARKERS.iter().any(|m| key.contains(m))
    }
}

/// The counts of one part.
#[derive(Debug, Clone)]
pub struct PartCount {
    pub name: String,
    pub total: usize,
    /// Trainable under the official rule (what the official tools count).
    pub trainable: usize,
    /// Parameters the tuning method added.
    pub added: usize,
    /// Trainable while training (the rule minus `frozen_stages`).
    pub trainable_in_training: usize,
    /// The trainable keys, grouped.
    pub trainable_groups: Vec<KeyGroup>,
    /// Keys the rule trains but training freezes (`frozen_stages`), grouped.
    pub frozen_in_training: Vec<KeyGroup>,
}

impl PartCount {
    pub fn of(part: &dyn CountedPart) -> Self {
        let infos = part.param_infos();
        let ParamCount { total, trainable } = part.count();
        let added = infos
            .iter()
            .filter(|p| part.is_added(&p.key))
            .map(ParamInfo::numel)
            .sum();
        let trainable_in_training = infos
            .iter()
            .filter(|p| part.trainable_in_training(&p.key))
            .map(ParamInfo::numel)
            .sum();
        let trainable_groups = group_keys(
            infos
                .iter()
                .filter(|p| part.trainable(&p.key))
                .map(|p| (p.key.as_str(), p.numel())),
        );
        let frozen_in_training = group_keys(
            infos
                .iter()
                .filter(|p| part.trainable(&p.key) && !part.trainable_in_training(&p.key))
                .map(|p| (p.key.as_str(), p.numel())),
        );
        Self {
            name: part.name().to_string(),
            total,
            trainable,
            added,
            trainable_in_training,
            trainable_groups,
            frozen_in_training,
        }
    }

    /// The part as it was before the method added anything.
    pub fn original(&self) -> usize {
        self.total - self.added
    }

    /// `trainable / original`, the official share.
    pub fn share(&self) -> f64 {
        if self.original() == 0 {
            0.0
        } else {
            self.trainable as f64 / self.original() as f64
        }
    }

    /// `3,667,456 (4.23%)`; `0` when nothing trains; `(100%)` when everything does.
    pub fn trainable_text(&self) -> String {
        if self.trainable == 0 {
            "0".to_string()
        } else if self.trainable == self.original() {
            format!("{} (100%)", thousands(self.trainable))
        } else {
            format!(
                "{} ({:.2}%)",
                thousands(self.trainable),
                self.share() * 100.0
            )
        }
    }
}

/// The counts of a model built from a config.
#[derive(Debug, Clone)]
pub struct ModelCount {
    /// The registered method name.
    pub method: String,
    pub official_class: String,
    /// `frozen_stages` of the backbone config, when set.
    pub frozen_stages: Option<i64>,
    /// The backbone first, then any other counted part.
    pub parts: Vec<PartCount>,
}

impl ModelCount {
    /// The backbone's counts (the part the official share is about).
    pub fn backbone(&self) -> Option<&PartCount> {
        self.parts.iter().find(|p| p.name == "backbone")
    }

    /// `Mona 3,667,456 (4.23%)`, the row of the paper's table, names padded to `width`.
    pub fn table_row(&self, width: usize) -> String {
        let cell = self
            .backbone()
            .map(PartCount::trainable_text)
            .unwrap_or_default();
        format!("{:<width$} {cell}", display_name(&self.method))
    }

    /// One JSON object with every number.
    pub fn to_json(&self) -> serde_json::Value {
        let parts: Vec<serde_json::Value> = self
            .parts
            .iter()
            .map(|p| {
                json!({
                    "part": p.name,
                    "total": p.total,
                    "original": p.original(),
                    "added": p.added,
                    "trainable": p.trainable,
                    "trainable_in_training": p.trainable_in_training,
                    "share": p.share(),
                    "text": p.trainable_text(),
                })
            })
            .collect();
        let backbone = self.backbone();
        json!({
            "method": self.method,
            "display": display_name(&self.method),
            "official_class": self.official_class,
            "frozen_stages": self.frozen_stages,
            "backbone_total": backbone.map(|b| b.total),
            "backbone_original": backbone.map(|b| b.original()),
            "added": backbone.map(|b| b.added),
            "trainable": backbone.map(|b| b.trainable),
            "trainable_in_training": backbone.map(|b| b.trainable_in_training),
            "share": backbone.map(|b| b.share()),
            "text": backbone.map(|b| b.trainable_text()),
            "parts": parts,
        })
    }
}

/// Builds the backbone at `backbone_key` of `config` and counts it.
///
/// Parameters are created lazily, so building even Swin-L draws no random numbers.
pub fn count_config(config: &Config, backbone_key: &str) -> Result<ModelCount, ToolError> {
    let node = config.node(backbone_key)?;
    let frozen_stages = node.extract_field::<i64>("frozen_stages")?;
    let backbone = build_backbone(&node, &Device::flex())?;
    let method = backbone.method();
    tracing::debug!(method = method.name(), "counting the backbone");
    Ok(ModelCount {
        method: method.name().to_string(),
        official_class: method.official_class().to_string(),
        frozen_stages,
        parts: {
            let mut parts = vec![PartCount::of(&BackbonePart(&backbone))];
            parts.extend(head_parts(config)?);
            parts
        },
    })
}

/// A head of a task model: every parameter trains except BN running statistics.
pub struct HeadPart {
    pub name: String,
    pub infos: Vec<ParamInfo>,
}

impl CountedPart for HeadPart {
    fn name(&self) -> &str {
        &self.name
    }
    fn param_infos(&self) -> Vec<ParamInfo> {
        self.infos.clone()
    }
    fn count(&self) -> ParamCount {
        ParamCount {
            total: self.infos.iter().map(ParamInfo::numel).sum(),
            trainable: self
                .infos
                .iter()
                .filter(|p| self.trainable(&p.key))
                .map(ParamInfo::numel)
                .sum(),
        }
    }
    fn trainable(&self, key: &str) -> bool {
        !mona_core::nn::BatchNorm2d::is_buffer(key)
    }
}

/// The parts after the backbone, as the model's registration lists them
/// ([`mona_core::task::TaskFns::parts`]): a config without `model.type` (a bare backbone)
/// has none; an unknown type is an error naming the nearest registered models.
fn head_parts(config: &Config) -> Result<Vec<PartCount>, ToolError> {
    let model = config.node("model")?;
    if model.get("type").is_none() {
        return Ok(Vec::new());
    }
    let entry = lookup::<ModelEntry>(&model)?;
    let parts = (entry.build.parts)(config)?;
    Ok(parts
        .into_iter()
        .map(|part| {
            PartCount::of(&HeadPart {
                name: part.name,
                infos: part.params,
            })
        })
        .collect())
}
