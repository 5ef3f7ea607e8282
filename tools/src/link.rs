//! Keeping registering crates in the binaries.
//!
//! A crate that nothing references is dropped by the linker, and its `inventory::submit!`
//! entries vanish with it: a config naming one of its types would then fail with "unknown
//! type" although the crate is a dependency. Every binary calls [`link_all`] first, and
//! `tests/list_registry.rs` checks the registered names, so a dropped crate fails loudly.

/// References every crate of the workspace that registers types into the `mona-core`
/// registries. A plugin crate's binaries call its own `link` besides (through the entry
/// points of [`crate::entry`]).
#[inline(never)]
pub fn link_all() {
    mona_cls::link();
    mona_data::link();
    mona_det::link();
    mona_seg::link();
}
