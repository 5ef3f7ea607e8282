//! Keeping registering crates in the binaries.
//!
//! A crate that nothing references is dropped by the linker, and its `inventory::submit!`
//! entries vanish with it: a config naming one of its types would then fail with "unknown
//! type" although the crate is a dependency. Every binary calls [`link_all`] first, and
//! `tests/list_registry.rs` checks the registered names, so a dropped crate fails loudly.

/// References every crate that registers types into the `mona-core` registries.
#[inline(never)]
pub fn link_all() {
    mona_cls::link();
    mona_data::link();
    mona_det::link();
    mona_plugin_adapter::link();
    mona_seg::link();
}
