//! An example plugin: a tuning method, a segmentation decode head and a detection head
//! registered from outside the core, trained through this crate's own binaries, with no edit to any core crate or to
//! `tools/`.
//!
//! **The method** `scaled_lowrank` adds one low-rank residual adapter per Swin block,
//!
//! ```text
//! y = x + s ⊙ up(GELU(down(LN(x))))        down: C → r, up: r → C (zero-initialised)
//! ```
//!
//! with a learnable per-channel scale `s` (initialised to `scale`). Because `up` starts at
//! zero the tuned backbone starts exactly as the pretrained one, and only the adapter
//! (`my_module_1.{norm,down,up,scale}`) trains.
//!
//! ```toml
//! [model.backbone.method]
//! type = "scaled_lowrank"
//! rank = 8          # bottleneck width r
//! scale = 0.1       # initial value of the learnable per-channel scale s
//! position = "after_mlp"   # or "after_attn": where on the residual stream it acts
//! ```
//!
//! **The heads** `SegformerHead` is mmseg's all-MLP decoder (see [`head`]);
//! `SharedTowerRetinaHead` is a RetinaNet head with one conv tower shared by its two outputs
//! (see [`anchor_head`]).
//!
//! It shows everything a third-party extension needs and nothing more:
//! - the method is a [`mona_core::methods::TuningMethod`] registered with
//!   `inventory::submit!` into [`mona_core::methods::MethodEntry`] (see [`method`]); the head
//!   is registered into [`mona_seg::SegHeadEntry`] the same way;
//! - each module is an ordinary `#[derive(Module)]` struct with named sub-modules implementing
//!   [`mona_core::methods::Adapter`], [`mona_seg::SegDecodeHead`] or
//!   [`mona_det::heads::AnchorHeadModule`] (see [`module`], [`head`], [`anchor_head`]);
//!   the core holds them type-erased, and their parameter keys are their own field names;
//! - their own config keys are read from their config tables;
//! - the binaries `plugin-train`, `plugin-test`, `plugin-infer`, `plugin-list-registry` and
//!   `plugin-count-params` are mona's tools (`mona_tools::entry`) with this crate linked in.
//!
//! ```text
//! cargo run --release -p mona-plugin-adapter --bin plugin-train -- \
//!     examples/plugin-adapter/configs/seg_demo_scaled_lowrank_segformer.toml
//! ```
//!
//! Binaries must call [`link`] (or reference something else in this crate): the linker drops
//! a crate nothing references, and its registry entries with it.

pub mod anchor_head;
pub mod head;
pub mod method;
pub mod module;

pub use anchor_head::SharedTowerRetinaHead;
pub use head::SegformerHead;
pub use method::{Position, ScaledLowRankMethod};
pub use module::{ScaledLowRank, scaled_lowrank_params};

/// Keeps this crate and the crates it registers into, and so all their `inventory`
/// registrations, in the final binary.
///
/// Call it once from `main`. It is not inlined so that the call really references this
/// crate's object code.
#[inline(never)]
pub fn link() {
    method::link();
    head::link();
    anchor_head::link();
}
