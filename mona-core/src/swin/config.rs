use serde::{Deserialize, Serialize};

/// Architecture of a Swin backbone, with the argument names of the official det-style
/// `SwinTransformer.__init__` so that configs carry over unchanged.
///
/// `arch` (`swin_t`, `swin_s`, `swin_b`, `swin_l`, or mmcls' `tiny`/`small`/`base`/`large`)
/// selects a preset for `embed_dim`, `depths` and `num_heads`; explicit keys win over it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwinConfig {
    /// The registry name (`SwinTransformer`); accepted so a backbone node extracts as a whole.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default = "d_pretrain_img_size")]
    pub pretrain_img_size: usize,
    #[serde(default = "d_patch_size")]
    pub patch_size: usize,
    #[serde(default = "d_in_chans")]
    pub in_chans: usize,
    #[serde(default)]
    pub embed_dim: Option<usize>,
    #[serde(default)]
    pub depths: Option<Vec<usize>>,
    #[serde(default)]
    pub num_heads: Option<Vec<usize>>,
    #[serde(default = "d_window_size")]
    pub window_size: usize,
    #[serde(default = "d_mlp_ratio")]
    pub mlp_ratio: f64,
    #[serde(default = "d_true")]
    pub qkv_bias: bool,
    /// Overrides `head_dim^-0.5` when set (None in every official config).
    #[serde(default)]
    pub qk_scale: Option<f64>,
    #[serde(default)]
    pub drop_rate: f64,
    #[serde(default)]
    pub attn_drop_rate: f64,
    #[serde(default = "d_drop_path_rate")]
    pub drop_path_rate: f64,
    /// Absolute position embedding; false in every official config and not supported here.
    #[serde(default)]
    pub ape: bool,
    #[serde(default = "d_true")]
    pub patch_norm: bool,
    #[serde(default = "d_out_indices")]
    pub out_indices: Vec<usize>,
    /// `frozen_stages` of the official code: ≥ 0 freezes `patch_embed`, ≥ 2 also freezes
    /// stages `0..frozen_stages-1` during training (on top of the method's rule).
    #[serde(default = "d_frozen_stages")]
    pub frozen_stages: i64,
    /// Gradient checkpointing flag of the official code; accepted, no numerical effect.
    #[serde(default)]
    pub use_checkpoint: bool,
    /// The tuning method table; read by the method registry, not by the architecture.
    #[serde(default, skip_serializing)]
    pub method: Option<serde::de::IgnoredAny>,
}

fn d_pretrain_img_size() -> usize {
    224
}
fn d_patch_size() -> usize {
    4
}
fn d_in_chans() -> usize {
    3
}
fn d_window_size() -> usize {
    7
}
fn d_mlp_ratio() -> f64 {
    4.0
}
fn d_true() -> bool {
    true
}
fn d_drop_path_rate() -> f64 {
    0.2
}
fn d_out_indices() -> Vec<usize> {
    vec![0, 1, 2, 3]
}
fn d_frozen_stages() -> i64 {
    -1
}

impl Default for SwinConfig {
    fn default() -> Self {
        Self::swin_t()
    }
}

impl SwinConfig {
    fn with_arch(embed_dim: usize, depths: [usize; 4], num_heads: [usize; 4]) -> Self {
        Self {
            type_name: None,
            arch: None,
            pretrain_img_size: 224,
            patch_size: 4,
            in_chans: 3,
            embed_dim: Some(embed_dim),
            depths: Some(depths.to_vec()),
            num_heads: Some(num_heads.to_vec()),
            window_size: 7,
            mlp_ratio: 4.0,
            qkv_bias: true,
            qk_scale: None,
            drop_rate: 0.0,
            attn_drop_rate: 0.0,
            drop_path_rate: 0.2,
            ape: false,
            patch_norm: true,
            out_indices: vec![0, 1, 2, 3],
            frozen_stages: -1,
            use_checkpoint: false,
            method: None,
        }
    }

    /// Swin-T: 96; 2,2,6,2; 3,6,12,24.
    pub fn swin_t() -> Self {
        Self::with_arch(96, [2, 2, 6, 2], [3, 6, 12, 24])
    }
    /// Swin-S: 96; 2,2,18,2; 3,6,12,24.
    pub fn swin_s() -> Self {
        Self::with_arch(96, [2, 2, 18, 2], [3, 6, 12, 24])
    }
    /// Swin-B: 128; 2,2,18,2; 4,8,16,32.
    pub fn swin_b() -> Self {
        Self::with_arch(128, [2, 2, 18, 2], [4, 8, 16, 32])
    }
    /// Swin-L: 192; 2,2,18,2; 6,12,24,48.
    pub fn swin_l() -> Self {
        Self::with_arch(192, [2, 2, 18, 2], [6, 12, 24, 48])
    }

    /// A preset by name; `None` for an unknown name.
    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "swin_t" | "tiny" | "t" => Some(Self::swin_t()),
            "swin_s" | "small" | "s" => Some(Self::swin_s()),
            "swin_b" | "base" | "b" => Some(Self::swin_b()),
            "swin_l" | "large" | "l" => Some(Self::swin_l()),
            _ => None,
        }
    }

    /// Fills `embed_dim`, `depths` and `num_heads` from `arch` (or Swin-T) where unset, and
    /// checks the architecture. Errors name the offending field.
    pub fn resolved(mut self) -> Result<Self, SwinConfigError> {
        let base = match &self.arch {
            Some(a) => Self::preset(a).ok_or_else(|| SwinConfigError::Arch(a.clone()))?,
            None => Self::swin_t(),
        };
        self.embed_dim = self.embed_dim.or(base.embed_dim);
        self.depths = self.depths.or(base.depths);
        self.num_heads = self.num_heads.or(base.num_heads);
        let (depths, heads) = (self.depths(), self.num_heads());
        if depths.len() != heads.len() || depths.is_empty() {
            return Err(SwinConfigError::Stages {
                depths: depths.len(),
                heads: heads.len(),
            });
        }
        for (i, h) in heads.iter().enumerate() {
            let c = self.stage_channels(i);
            if *h == 0 || !c.is_multiple_of(*h) {
                return Err(SwinConfigError::Heads {
                    stage: i,
                    heads: *h,
                    channels: c,
                });
            }
        }
        if let Some(i) = self.out_indices.iter().find(|i| **i >= depths.len()) {
            return Err(SwinConfigError::OutIndex {
                stage: *i,
                stages: depths.len(),
            });
        }
        if self.ape {
            return Err(SwinConfigError::Ape);
        }
        if self.window_size == 0 || self.patch_size == 0 {
            return Err(SwinConfigError::ZeroSize);
        }
        Ok(self)
    }

    pub fn embed_dim(&self) -> usize {
        self.embed_dim.unwrap_or(96)
    }
    pub fn depths(&self) -> Vec<usize> {
        self.depths.clone().unwrap_or_else(|| vec![2, 2, 6, 2])
    }
    pub fn num_heads(&self) -> Vec<usize> {
        self.num_heads.clone().unwrap_or_else(|| vec![3, 6, 12, 24])
    }
    /// Channels of stage `i`: `embed_dim · 2^i`.
    pub fn stage_channels(&self, i: usize) -> usize {
        self.embed_dim() << i
    }
    pub fn num_stages(&self) -> usize {
        self.depths().len()
    }
}

/// A Swin architecture that cannot be built; each names the config field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SwinConfigError {
    #[error("arch: unknown Swin preset \"{0}\" (expected swin_t, swin_s, swin_b or swin_l)")]
    Arch(String),
    #[error("depths ({depths}) and num_heads ({heads}) must have the same non-zero length")]
    Stages { depths: usize, heads: usize },
    #[error("num_heads.{stage}: {heads} heads do not divide {channels} channels")]
    Heads {
        stage: usize,
        heads: usize,
        channels: usize,
    },
    #[error("out_indices: stage {stage} does not exist ({stages} stages)")]
    OutIndex { stage: usize, stages: usize },
    #[error(
        "ape: absolute position embeddings are not supported (no official Mona config uses them)"
    )]
    Ape,
    #[error("window_size and patch_size must be positive")]
    ZeroSize,
}
