//! The det-style Swin Transformer shared by the three official sub-projects.
//!
//! Module paths equal the official state-dict keys (`patch_embed.proj.weight`,
//! `layers.2.blocks.5.attn.relative_position_bias_table`, `norm3.bias`, ...).

mod attention;
mod backbone;
mod block;
mod config;
mod layer;
mod patch;
mod windows;

pub use attention::{WindowAttention, relative_position_index};
pub use backbone::{SwinBuildError, SwinTransformer};
pub use block::{Mlp, SwinBlock};
pub use config::{SwinConfig, SwinConfigError};
pub use layer::BasicLayer;
pub use patch::{PatchEmbed, PatchMerging};
pub use windows::{shifted_window_mask, window_partition, window_reverse};
