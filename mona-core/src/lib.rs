//! `mona-core`: what every task shares.
//!
//! - [`config`]: layered TOML configs with mmcv semantics (`_base_`, `_delete_`,
//!   `--cfg-options`), typed extraction through figment.
//! - [`registry`]: name-based registries (inventory) for every extension point.
//! - [`dyn_module`]: modules of a type chosen at run time (plugin parts inside fixed models).
//! - [`fused`]: fused CPU kernels (window attention, window partition, layer norm,
//!   GELU + dropout, depthwise convolution) as differentiable ops on the flex backend.
//! - [`nn`]: layers with PyTorch parameter names and layouts, exact GELU, DropPath.
//! - [`swin`]: the det-style Swin Transformer of the official code.
//! - [`methods`]: Mona and every baseline tuning method, with the official freezing rules.
//! - [`checkpoint`]: `.pth` / safetensors import with a key report, adapter-only files.
//! - [`params`]: named parameter walks (official state-dict keys), counting, freezing.
//! - [`replica_sync`]: what data-parallel replicas exchange mid-pass (SyncBN statistics).

pub mod backbone;
pub mod checkpoint;
pub mod config;
pub mod dist;
pub mod dyn_module;
pub mod fused;
pub mod infer;
pub mod methods;
pub mod nn;
pub mod ops;
pub mod params;
pub mod random;
pub mod registry;
pub mod replica_sync;
pub mod reproducibility;
pub mod runner;
pub mod swin;
pub mod task;
pub mod task_setup;
pub mod train_task;

/// Re-exported so that [`declare_registry!`] works in crates that do not depend on inventory.
pub use inventory;

pub use burn;
