//! The `type` of every detection sub-component a config names, checked against what this
//! crate implements.
//!
//! mmdet builds anchor generators, box coders, assigners, samplers, losses, RoI extractors and
//! layers, and NMS from their `type`. Here each has one implementation (its settings read by
//! serde), so a config naming another (`GIoULoss` as RetinaNet's box loss, `soft_nms`,
//! `OHEMSampler`) would otherwise train or test silently with ours. [`check`] refuses it,
//! naming the file that set the type, its key and the nearest supported name.

use mona_core::config::ConfigNode;
use mona_core::registry::{BuildError, unknown_type};

/// A sub-component's place under the `model` node and the types accepted there.
struct Slot {
    /// Dotted path under `model`; a segment ending in `[]` is one table or a list of them
    /// (per-stage settings).
    path: &'static str,
    /// What it is, for the message.
    what: &'static str,
    names: &'static [&'static str],
}

const fn slot(path: &'static str, what: &'static str, names: &'static [&'static str]) -> Slot {
    Slot { path, what, names }
}

const ANCHORS: &[&str] = &["AnchorGenerator"];
const CODER: &[&str] = &["DeltaXYWHBBoxCoder"];
const ASSIGNER: &[&str] = &["MaxIoUAssigner"];
const NMS: &[&str] = &["nms"];
const CE: &[&str] = &["CrossEntropyLoss"];

/// `RetinaNet`: `train_cfg` / `test_cfg` at model level or inside `bbox_head`.
const SINGLE_STAGE: &[Slot] = &[
    slot("bbox_head.anchor_generator", "anchor generator", ANCHORS),
    slot("bbox_head.bbox_coder", "bbox coder", CODER),
    slot("bbox_head.loss_cls", "classification loss", &["FocalLoss"]),
    slot("bbox_head.loss_bbox", "box loss", &["L1Loss"]),
    slot("train_cfg.assigner", "assigner", ASSIGNER),
    slot("train_cfg.sampler", "sampler", &["PseudoSampler"]),
    slot("test_cfg.nms", "NMS", NMS),
    slot("bbox_head.train_cfg.assigner", "assigner", ASSIGNER),
    slot("bbox_head.train_cfg.sampler", "sampler", &["PseudoSampler"]),
    slot("bbox_head.test_cfg.nms", "NMS", NMS),
];

/// `CascadeRCNN`.
const TWO_STAGE: &[Slot] = &[
    slot("rpn_head.anchor_generator", "anchor generator", ANCHORS),
    slot("rpn_head.bbox_coder", "bbox coder", CODER),
    slot("rpn_head.loss_cls", "classification loss", CE),
    slot("rpn_head.loss_bbox", "box loss", &["SmoothL1Loss"]),
    slot(
        "roi_head.bbox_roi_extractor[]",
        "RoI extractor",
        &["SingleRoIExtractor"],
    ),
    slot(
        "roi_head.bbox_roi_extractor[].roi_layer",
        "RoI layer",
        &["RoIAlign"],
    ),
    slot(
        "roi_head.mask_roi_extractor[]",
        "RoI extractor",
        &["SingleRoIExtractor"],
    ),
    slot(
        "roi_head.mask_roi_extractor[].roi_layer",
        "RoI layer",
        &["RoIAlign"],
    ),
    slot("roi_head.bbox_head[].bbox_coder", "bbox coder", CODER),
    slot("roi_head.bbox_head[].loss_cls", "classification loss", CE),
    slot(
        "roi_head.bbox_head[].loss_bbox",
        "box loss",
        &["SmoothL1Loss", "L1Loss", "GIoULoss"],
    ),
    slot("roi_head.mask_head[].loss_mask", "mask loss", CE),
    slot("train_cfg.rpn.assigner", "assigner", ASSIGNER),
    slot("train_cfg.rpn.sampler", "sampler", &["RandomSampler"]),
    slot("train_cfg.rpn_proposal.nms", "NMS", NMS),
    slot("train_cfg.rcnn[].assigner", "assigner", ASSIGNER),
    slot("train_cfg.rcnn[].sampler", "sampler", &["RandomSampler"]),
    slot("test_cfg.rpn.nms", "NMS", NMS),
    slot("test_cfg.rcnn.nms", "NMS", NMS),
];

/// Which detector's sub-components to check.
#[derive(Debug, Clone, Copy)]
pub enum Detector {
    SingleStage,
    TwoStage,
}

/// Checks every present sub-component `type` under the `model` node.
pub fn check(model: &ConfigNode<'_>, detector: Detector) -> Result<(), BuildError> {
    let slots = match detector {
        Detector::SingleStage => SINGLE_STAGE,
        Detector::TwoStage => TWO_STAGE,
    };
    for slot in slots {
        for node in nodes_at(model, slot.path) {
            check_one(&node, slot)?;
        }
    }
    Ok(())
}

/// The nodes at `path` under `node` (several through a `[]` segment on a list).
fn nodes_at<'a>(node: &ConfigNode<'a>, path: &str) -> Vec<ConfigNode<'a>> {
    let mut current = vec![*node];
    for segment in path.split('.') {
        let (name, each) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (segment, false),
        };
        current = current
            .iter()
            .filter_map(|n| n.get(name))
            .flat_map(|child| match child.items() {
                items if each && !items.is_empty() => items,
                _ => vec![child],
            })
            .collect();
    }
    current
}

fn check_one(node: &ConfigNode<'_>, slot: &Slot) -> Result<(), BuildError> {
    let Some(type_node) = node.get("type") else {
        return Ok(());
    };
    let name = node.type_name()?;
    if slot.names.contains(&name) {
        return Ok(());
    }
    Err(BuildError::Registry(unknown_type(
        slot.what,
        name,
        &type_node.file().display().to_string(),
        type_node.key(),
        slot.names.to_vec(),
    )))
}
