//! Checkpoint import and export.
//!
//! - [`StateDict::read`]: PyTorch `.pth` (official Swin releases with a `model` key,
//!   mmdet/mmseg/mmcls files with a `state_dict` key, bare dicts) and safetensors, with
//!   `module.` prefixes stripped; non-float entries (integer buffers) are set aside.
//! - [`load_state_dict`]: writes a state dict into any module by official key and reports
//!   applied / missing / unused keys; recomputed buffers (`relative_position_index`,
//!   `attn_mask`) are reported as such, and relative position bias tables of another window
//!   size are resized bicubically (spec: window-12 IN-22K files into window-7 models).
//! - [`adapter_file`]: adapter-only safetensors files (the trainable parameters of a tuned
//!   backbone, with method and config in the metadata).
//! - [`write_safetensors`]: atomic safetensors writes (temp file + rename).
//! - [`stored_classes`]: the class names a checkpoint or adapter file was trained on.

pub mod adapter_file;
mod bicubic;
mod classes;
mod error;
mod load;
mod pretrained;
mod read;
mod write;

pub use bicubic::{resize_bias_table, resize_bicubic};
pub use classes::{CLASSES_KEY, stored_classes};
pub use error::CheckpointError;
pub use load::{KeyReport, LoadOptions, load_state_dict};
pub use pretrained::load_pretrained;
pub use read::StateDict;
pub use write::{write_atomic_text, write_safetensors};
