//! The mona command-line tools: shared pieces of the binaries in `src/bin/`.
//!
//! - [`entry`]: the binaries' entry points (`train`, `test`, ...), for plugin crates' own
//!   binaries;
//! - [`link`]: [`link_all`], which every binary calls so that every registering crate (and
//!   its `inventory` entries) is linked in;
//! - [`bench`]: the performance cases (GPU table, CPU case) and their runner;
//! - [`cli`]: logging set-up and the one-line error report of every binary;
//! - [`config_args`]: loading a config with `--cfg-options`;
//! - [`count`]: parameter counts per model part and the official trainable share;
//! - [`methods`]: the paper's method list and display names, and swapping a config's method;
//! - [`convert`]: checkpoint conversion to safetensors, optionally through a backbone;
//! - [`paths`]: whether an output path names one of the inputs;
//! - [`plot`]: training curves from `log.jsonl` files as a PNG or SVG, drawn by plotters (the
//!   `plot-log` binary);
//! - [`registries`]: listing every registry and its names;
//! - [`work_dir_lock`]: one `train` process per work dir.
//!
//! The binaries: `train`, `test`, `print-config`, `count-params`, `convert-checkpoint`,
//! `list-registry`, `bench`.

pub mod bench;
pub mod cli;
pub mod config_args;
pub mod convert;
pub mod count;
pub mod entry;
pub mod error;
pub mod keys;
pub mod launcher;
pub mod link;
pub mod merge_lora;
pub mod methods;
pub mod paths;
pub mod plot;
pub mod registries;
pub mod work_dir_lock;

pub use error::ToolError;
pub use link::link_all;
