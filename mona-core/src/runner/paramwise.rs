//! mmcv 1.x `DefaultOptimizerConstructor` parameter-wise rules.
//!
//! For each trainable parameter, in this order:
//! 1. `custom_keys`, sorted by length (longest first, alphabetical tie-break): the first key
//!    that is a substring of the full parameter name sets `lr_mult` and `decay_mult` and
//!    overrides every other rule;
//! 2. otherwise, a parameter of a norm module (LayerNorm, BatchNorm, GroupNorm) gets
//!    `norm_decay_mult`; a depthwise conv (in_channels == groups) `dwconv_decay_mult`;
//!    another `bias` gets `bias_decay_mult` (and `bias_lr_mult` for its lr).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::params::ParamInfo;

/// One custom key's multipliers.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyMult {
    #[serde(default = "one")]
    pub lr_mult: f64,
    #[serde(default = "one")]
    pub decay_mult: f64,
}

fn one() -> f64 {
    1.0
}

/// `optimizer.paramwise_cfg`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamwiseCfg {
    #[serde(default)]
    pub custom_keys: BTreeMap<String, KeyMult>,
    #[serde(default)]
    pub bias_lr_mult: Option<f64>,
    #[serde(default)]
    pub bias_decay_mult: Option<f64>,
    #[serde(default)]
    pub norm_decay_mult: Option<f64>,
    #[serde(default)]
    pub dwconv_decay_mult: Option<f64>,
    #[serde(default)]
    pub bypass_duplicate: bool,
}

/// The learning rate and weight decay multipliers of one parameter, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamMults {
    pub lr_mult: f64,
    pub decay_mult: f64,
    /// The rule that decided (`custom_keys[".relative_position_bias_table"]`, `norm`, ...).
    pub rule: String,
}

const NORM_TYPES: [&str; 5] = [
    "LayerNorm",
    "BatchNorm",
    "BatchNorm2d",
    "GroupNorm",
    "SyncBatchNorm",
];

impl ParamwiseCfg {
    /// The custom keys in mmcv's matching order.
    fn sorted_keys(&self) -> Vec<(&String, &KeyMult)> {
        let mut keys: Vec<_> = self.custom_keys.iter().collect();
        keys.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(b.0)));
        keys
    }

    /// Multipliers of the parameter `info` (key relative to the whole model, e.g.
    /// `backbone.layers.0.blocks.0.my_module_1.norm.weight`); `weight_shape_of_module` gives the
    /// weight shape of the module owning the parameter, to detect depthwise convs.
    pub fn mults(&self, info: &ParamInfo, module_weight_shape: Option<&[usize]>) -> ParamMults {
        for (key, m) in self.sorted_keys() {
            if info.key.contains(key.as_str()) {
                return ParamMults {
                    lr_mult: m.lr_mult,
                    decay_mult: m.decay_mult,
                    rule: format!("custom_keys[{key:?}]"),
                };
            }
        }
        let name = info.key.rsplit('.').next().unwrap_or("");
        let is_norm = NORM_TYPES.contains(&info.module_type.as_str());
        let is_dwconv = info.module_type == "Conv2d"
            && module_weight_shape.is_some_and(|s| s.len() == 4 && s[1] == 1);
        let mut out = ParamMults {
            lr_mult: 1.0,
            decay_mult: 1.0,
            rule: "default".into(),
        };
        if name == "bias"
            && !is_norm
            && let Some(m) = self.bias_lr_mult
        {
            out.lr_mult = m;
        }
        if is_norm {
            if let Some(m) = self.norm_decay_mult {
                out.decay_mult = m;
                out.rule = "norm_decay_mult".into();
            }
        } else if is_dwconv {
            if let Some(m) = self.dwconv_decay_mult {
                out.decay_mult = m;
                out.rule = "dwconv_decay_mult".into();
            }
        } else if name == "bias"
            && let Some(m) = self.bias_decay_mult
        {
            out.decay_mult = m;
            out.rule = "bias_decay_mult".into();
        }
        out
    }
}
