//! The binaries' entry points, one module per binary, each with a `main`.
//!
//! They live in the library so that a plugin crate can ship the same tools with its own
//! registrations linked in: its `src/bin/train.rs` calls its own `link()` and then
//! [`train::main`], and gets the full `train` with its adapters and heads selectable by name,
//! without any edit to this crate.

pub mod convert_checkpoint;
pub mod count_params;
pub mod infer;
pub mod list_registry;
pub mod print_config;
pub mod test;
pub mod train;
