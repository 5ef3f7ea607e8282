//! An example plugin: a tuning method registered from outside `mona-core`.
//!
//! `scaled_lowrank` adds one low-rank residual adapter per Swin block,
//!
//! ```text
//! y = x + s ⊙ up(GELU(down(LN(x))))        down: C → r, up: r → C (zero-initialised)
//! ```
//!
//! with a learnable per-channel scale `s` (initialised to `scale`). Because `up` starts at
//! zero the tuned backbone starts exactly as the pretrained one, and only the adapter
//! (`my_module_1.*`) trains.
//!
//! It shows everything a third-party adapter needs and nothing more:
//! - the method is a [`mona_core::methods::TuningMethod`] registered with
//!   `inventory::submit!` into [`mona_core::methods::MethodEntry`] (see [`method`]);
//! - its modules are [`mona_core::methods::PluginAdapter`]s composed from `mona-core`'s layers
//!   plus a plain forward function (see [`module`]), because burn modules are not object-safe;
//! - its own config keys are read with serde from the `[model.backbone.method]` table.
//!
//! ```toml
//! [model.backbone.method]
//! type = "scaled_lowrank"
//! rank = 8          # bottleneck width r
//! scale = 0.1       # initial value of the learnable per-channel scale s
//! position = "after_mlp"   # or "after_attn": where on the residual stream it acts
//! ```
//!
//! Binaries must call [`link`] (or reference something else in this crate): the linker drops
//! a crate nothing references, and its registry entries with it.

pub mod method;
pub mod module;

pub use method::{Position, ScaledLowRankMethod};
pub use module::{scaled_lowrank_adapter, scaled_lowrank_params};

/// Keeps this crate, and so its `inventory` registrations, in the final binary.
///
/// Call it once from `main` (the tools do, through `mona_tools::link_all`). It is not
/// inlined so that the call really references this crate's object code.
#[inline(never)]
pub fn link() {
    method::link();
}
