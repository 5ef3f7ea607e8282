//! RoI heads chosen by name (`model.roi_head.type`), their stages' box and mask head types
//! checked against those registries first.
//!
//! A RoI head owns a two-stage detector's training flow (proposal sampling per stage, box
//! refinement between stages, mask targets), so this registry takes further names for
//! `CascadeRoIHead` configurations, while its stages' box and mask heads are open to new
//! types (`crate::roi::stage_heads`). A RoI head with another flow (mmdet's
//! `StandardRoIHead`, `HybridTaskCascadeRoIHead`) is a new detector, registered as a model
//! through `crate::detector::Detector`.

use burn::tensor::Device;

use mona_core::config::ConfigNode;
use mona_core::registry::{BuildError, lookup};

use super::config::CascadeRoIHeadConfig;
use super::roi_head::CascadeRoIHead;
use crate::roi::{BBoxHeadEntry, MaskHeadEntry};

/// Builds a RoI head from its node.
pub type RoiHeadBuilder = fn(&ConfigNode<'_>, &Device) -> Result<CascadeRoIHead, BuildError>;

mona_core::declare_registry! {
    /// RoI heads of two-stage detectors, selected by `model.roi_head.type`.
    pub struct RoiHeadEntry: "RoI head" => RoiHeadBuilder;
}

/// The RoI head of a `roi_head` node, its stages' box and mask head types checked against
/// their registries first (errors name the stage's key).
pub fn build_roi_head(
    node: &ConfigNode<'_>,
    device: &Device,
) -> Result<CascadeRoIHead, BuildError> {
    let entry = lookup::<RoiHeadEntry>(node)?;
    for (key, check) in [
        (
            "bbox_head",
            check_type::<BBoxHeadEntry> as fn(&ConfigNode<'_>) -> _,
        ),
        ("mask_head", check_type::<MaskHeadEntry>),
    ] {
        if let Some(child) = node.get(key) {
            match child.items() {
                stages if stages.is_empty() => check(&child)?,
                stages => stages.iter().try_for_each(check)?,
            }
        }
    }
    (entry.build)(node, device)
}

/// A present `type` of `node` must be registered in `R`.
fn check_type<R: mona_core::registry::Registration + inventory::Collect>(
    node: &ConfigNode<'_>,
) -> Result<(), BuildError> {
    if node.get("type").is_some() {
        lookup::<R>(node)?;
    }
    Ok(())
}

fn build_cascade(node: &ConfigNode<'_>, device: &Device) -> Result<CascadeRoIHead, BuildError> {
    let cfg: CascadeRoIHeadConfig = node.extract()?;
    CascadeRoIHead::new(&cfg, device).map_err(|e| BuildError::invalid(node, None, e.to_string()))
}

inventory::submit! { RoiHeadEntry::new("CascadeRoIHead", build_cascade) }
