//! Detection heads chosen by name. Dense heads (`RetinaHead`, `RPNHead`) are here; RoI heads
//! (`CascadeRoIHead`) in `crate::cascade::registry`, and the box and mask heads of its stages
//! beside their implementations (`crate::roi`).
//!
//! Each registry builds this crate's implementation of its kind, and the detectors build their
//! heads only through them, so `list-registry` shows every accepted name and a misspelt one
//! fails with the file, the key and the nearest names. A plugin can register further names
//! for these implementations (an mmdet subclass that only changes defaults, as
//! `Shared2FCBBoxHead` does for `ConvFCBBoxHead`). A head with training targets of its own is
//! a new detector: it registers a model ([`mona_core::task::ModelEntry`]) through the
//! [`crate::detector::Detector`] trait and [`crate::task::detector_task_fns`], reusing the
//! backbone, the neck registry and the task glue.

use burn::tensor::Device;

use mona_core::config::ConfigNode;
use mona_core::registry::{BuildError, lookup};

use crate::neck::NeckOutputs;
use crate::retina::{
    RetinaError, RetinaHead, RetinaHeadConfig, RetinaLogic, RetinaTestConfig, RetinaTrainConfig,
};
use crate::rpn::{RpnError, RpnHead, RpnHeadConfig, RpnLogic};

/// A dense head with its non-learnt logic.
pub enum DenseHead {
    /// Classifies and regresses every anchor into the final detections (`RetinaHead`).
    SingleStage(Box<RetinaHead>, Box<RetinaLogic>),
    /// Proposes class-agnostic regions for a second stage (`RPNHead`).
    Proposal(Box<RpnHead>, Box<RpnLogic>),
}

/// What a dense head is built from.
pub struct DenseHeadArgs<'a, 'c> {
    /// The head's node (`model.bbox_head`, `model.rpn_head`).
    pub node: &'a ConfigNode<'c>,
    /// The `model` node (mmdet 2.x keeps `train_cfg` / `test_cfg` there).
    pub model: &'a ConfigNode<'c>,
    /// What the neck feeds it.
    pub neck: NeckOutputs,
    pub device: &'a Device,
}

/// What a dense head does in a detector: the [`DenseHead`] variant its builder returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenseRole {
    /// Final detections (`bbox_head` of a single-stage detector).
    SingleStage,
    /// Region proposals (`rpn_head` of a two-stage detector).
    Proposal,
}

/// Builds a dense head of one role. The role is known before the head's config is read, so
/// a head in the wrong place is named as such rather than by the keys it does not take.
#[derive(Clone, Copy)]
pub struct DenseHeadBuilder {
    pub role: DenseRole,
    pub build: fn(&DenseHeadArgs<'_, '_>) -> Result<DenseHead, BuildError>,
}

mona_core::declare_registry! {
    /// Dense heads, selected by `model.bbox_head.type` (single-stage detectors) and
    /// `model.rpn_head.type` (two-stage detectors).
    pub struct DenseHeadEntry: "dense head" => DenseHeadBuilder;
}

/// The dense head of `args.node` for a detector that needs `role`; an unknown `type` names
/// the file, the key and the nearest registered heads, a head of the other role says so.
pub fn build_dense_head(
    args: &DenseHeadArgs<'_, '_>,
    role: DenseRole,
) -> Result<DenseHead, BuildError> {
    let entry = lookup::<DenseHeadEntry>(args.node)?;
    if entry.build.role != role {
        let message = match role {
            DenseRole::SingleStage => {
                "a region proposal head; RetinaNet needs a single-stage head (RetinaHead)"
            }
            DenseRole::Proposal => {
                "a single-stage detection head; rpn_head needs a region proposal head (RPNHead)"
            }
        };
        return Err(BuildError::invalid(
            args.node,
            Some("type"),
            format!("{}: {message}", entry.name),
        ));
    }
    (entry.build.build)(args)
}

/// The head's `in_channels` must be the neck's, and its anchor strides one per neck level.
fn check_neck(
    node: &ConfigNode<'_>,
    in_channels: usize,
    levels: usize,
    neck: NeckOutputs,
) -> Result<(), BuildError> {
    if in_channels != neck.channels {
        return Err(BuildError::invalid(
            node,
            Some("in_channels"),
            format!(
                "{in_channels}, but the neck outputs {} channels",
                neck.channels
            ),
        ));
    }
    if levels != neck.levels {
        return Err(BuildError::invalid(
            node,
            Some("anchor_generator.strides"),
            format!("{levels} strides for the neck's {} outputs", neck.levels),
        ));
    }
    Ok(())
}

/// `RetinaHead`, with `train_cfg` / `test_cfg` at model level (as in mmdet 2.x configs) or
/// inside the head.
fn build_retina(args: &DenseHeadArgs<'_, '_>) -> Result<DenseHead, BuildError> {
    let node = args.node;
    let mut cfg: RetinaHeadConfig = node.extract()?;
    if let Some(t) = args.model.get("train_cfg") {
        cfg.train_cfg = Some(t.extract::<RetinaTrainConfig>()?);
    }
    if let Some(t) = args.model.get("test_cfg") {
        cfg.test_cfg = Some(t.extract::<RetinaTestConfig>()?);
    }
    let invalid = |e: RetinaError| BuildError::invalid(node, None, e.to_string());
    let logic = RetinaLogic::new(&cfg).map_err(invalid)?;
    check_neck(node, cfg.in_channels, logic.anchors.num_levels(), args.neck)?;
    let head = RetinaHead::new(&cfg, args.device).map_err(invalid)?;
    Ok(DenseHead::SingleStage(Box::new(head), Box::new(logic)))
}

/// `RPNHead`.
fn build_rpn(args: &DenseHeadArgs<'_, '_>) -> Result<DenseHead, BuildError> {
    let node = args.node;
    let cfg: RpnHeadConfig = node.extract()?;
    let invalid = |e: RpnError| BuildError::invalid(node, None, e.to_string());
    let logic = RpnLogic::new(&cfg).map_err(invalid)?;
    check_neck(node, cfg.in_channels, logic.anchors.num_levels(), args.neck)?;
    let head = RpnHead::new(&cfg, args.device).map_err(invalid)?;
    Ok(DenseHead::Proposal(Box::new(head), Box::new(logic)))
}

inventory::submit! {
    DenseHeadEntry::new("RetinaHead", DenseHeadBuilder { role: DenseRole::SingleStage, build: build_retina })
}
inventory::submit! {
    DenseHeadEntry::new("RPNHead", DenseHeadBuilder { role: DenseRole::Proposal, build: build_rpn })
}
