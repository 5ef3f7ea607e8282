//! Detection heads chosen by name. Dense heads (`RetinaHead`, `RPNHead`) are here; RoI heads
//! (`CascadeRoIHead`) in `crate::cascade::registry`, and the box and mask heads of its stages
//! beside their implementations (`crate::roi`).
//!
//! The detectors build their heads only through the registries, so `list-registry` shows
//! every accepted name and a misspelt one fails with the file, the key and the nearest names.
//!
//! **Plugins.** A single-stage dense head of another crate is an ordinary `#[derive(Module)]`
//! struct implementing [`AnchorHeadModule`]: it maps the neck's levels to per-anchor class
//! logits and box deltas, and RetinaNet's anchor logic (anchors, coder, assigner, focal and L1
//! losses, NMS) trains and decodes them. It is held type-erased in [`SingleStageHead::Plugin`]
//! (burn's `Module` is not object-safe; see `mona_core::dyn_module`) with its own field names
//! as parameter keys, and its builder reads the shared keys with [`anchor_head_parts`]. The
//! box and mask heads of RoI head stages are open the same way (`crate::roi::stage_heads`).
//! A head with training targets of its own is a new detector: it registers
//! a model ([`mona_core::task::ModelEntry`]) through the [`crate::detector::Detector`] trait
//! and [`crate::task::detector_task_fns`], reusing the backbone, the neck registry and the
//! task glue.

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Tensor};

use mona_core::config::ConfigNode;
use mona_core::dyn_module::{DynModule, UnsupportedRank};
use mona_core::registry::{BuildError, lookup};

use crate::neck::NeckOutputs;
use crate::retina::{
    RetinaError, RetinaHead, RetinaHeadConfig, RetinaLogic, RetinaTestConfig, RetinaTrainConfig,
};
use crate::rpn::{RpnError, RpnHead, RpnHeadConfig, RpnLogic};

/// A single-stage dense head defined outside this crate, trained and decoded by RetinaNet's
/// anchor logic.
pub trait AnchorHeadModule: Module + ModuleDisplay + Sync + 'static {
    /// Per level of the neck (finest first): class logits `(B, A·C, H, W)` and box deltas
    /// `(B, A·4, H, W)` for `A` anchors per location and `C` classes (sigmoid, no background).
    fn forward(&self, feats: &[Tensor<4>]) -> (Vec<Tensor<4>>, Vec<Tensor<4>>);
}

/// Per-level class logits and box deltas.
pub type LevelOutputs = (Vec<Tensor<4>>, Vec<Tensor<4>>);

/// The functions a detector calls on a plugin head, filled in for its concrete type.
#[derive(Clone, Copy, Debug)]
pub struct AnchorHeadOps {
    forward: fn(&PluginAnchorHead, &[Tensor<4>]) -> LevelOutputs,
}

/// A plugin's single-stage head, its type erased.
pub type PluginAnchorHead = DynModule<AnchorHeadOps>;

/// A plugin's dense head with the ops of its type.
fn erase_anchor_head<H: AnchorHeadModule>(head: H) -> Result<PluginAnchorHead, UnsupportedRank> {
    let ops = AnchorHeadOps {
        forward: |m, feats| match m.get::<H>() {
            Some(h) => h.forward(feats),
            // The ops are built here together with the module they are given.
            None => unreachable!("an AnchorHeadOps travels with its own head type"),
        },
    };
    DynModule::new(head, ops)
}

/// The learnt part of a single-stage dense head. Variant names never appear in parameter keys.
// A model holds one head, so the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum SingleStageHead {
    Retina(RetinaHead),
    Plugin(PluginAnchorHead),
}

impl SingleStageHead {
    /// Wraps a plugin's head. Fails only for a parameter of rank above
    /// `mona_core::dyn_module::MAX_RANK`.
    pub fn plugin<H: AnchorHeadModule>(head: H) -> Result<Self, UnsupportedRank> {
        erase_anchor_head(head).map(SingleStageHead::Plugin)
    }

    /// `(cls_scores, bbox_preds)` per level.
    pub fn forward(&self, feats: &[Tensor<4>]) -> LevelOutputs {
        match self {
            SingleStageHead::Retina(h) => h.forward(feats),
            SingleStageHead::Plugin(h) => (h.ops().forward)(h, feats),
        }
    }
}

/// The learnt part of a region proposal head. Variant names never appear in parameter keys.
// A model holds one head per slot, so the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ProposalHead {
    Rpn(RpnHead),
    Plugin(PluginAnchorHead),
}

impl ProposalHead {
    /// Wraps a plugin's head, whose class logits are one objectness logit per anchor
    /// (`(B, A, H, W)`). Fails only for a parameter of rank above
    /// `mona_core::dyn_module::MAX_RANK`.
    pub fn plugin<H: AnchorHeadModule>(head: H) -> Result<Self, UnsupportedRank> {
        erase_anchor_head(head).map(ProposalHead::Plugin)
    }

    /// `(objectness logits, box deltas)` per level.
    pub fn forward(&self, feats: &[Tensor<4>]) -> LevelOutputs {
        match self {
            ProposalHead::Rpn(h) => h.forward(feats),
            ProposalHead::Plugin(h) => (h.ops().forward)(h, feats),
        }
    }
}

/// A dense head with its non-learnt logic.
pub enum DenseHead {
    /// Classifies and regresses every anchor into the final detections (`RetinaHead`, or a
    /// plugin's [`AnchorHeadModule`]).
    SingleStage(Box<SingleStageHead>, Box<RetinaLogic>),
    /// Proposes class-agnostic regions for a second stage (`RPNHead`, or a plugin's
    /// [`AnchorHeadModule`] with one objectness logit per anchor).
    Proposal(Box<ProposalHead>, Box<RpnLogic>),
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

/// What every single-stage head shares, read from its node: RetinaHead's keys (`num_classes`,
/// `in_channels`, `anchor_generator`, `bbox_coder`, `loss_cls`, `loss_bbox`, ...) with
/// `train_cfg` / `test_cfg` at model level (as in mmdet 2.x configs) or inside the head, and
/// the anchor logic built from them.
pub struct AnchorHeadParts {
    pub cfg: RetinaHeadConfig,
    pub logic: RetinaLogic,
    /// Anchors per location (`A`).
    pub num_anchors: usize,
}

/// Reads [`AnchorHeadParts`] from `args.node`, whose keys are RetinaHead's and `own_keys` (a
/// plugin head's own settings, which the plugin reads itself); any other key is an error.
/// Also checks the head against the neck (`in_channels`, one anchor stride per level).
pub fn anchor_head_parts(
    args: &DenseHeadArgs<'_, '_>,
    own_keys: &[&str],
) -> Result<AnchorHeadParts, BuildError> {
    let node = args.node;
    // RetinaHead's tower depth means nothing to another head's layers.
    if !own_keys.is_empty() && node.get("stacked_convs").is_some() {
        return Err(BuildError::invalid(
            node,
            Some("stacked_convs"),
            format!(
                "RetinaHead's tower depth, which a {} does not read; it reads RetinaHead's other keys and {}",
                node.type_name()?,
                own_keys.join(", ")
            ),
        ));
    }
    let mut cfg: RetinaHeadConfig = read_shared_keys(node, own_keys)?;
    if let Some(t) = args.model.get("train_cfg") {
        cfg.train_cfg = Some(t.extract::<RetinaTrainConfig>()?);
    }
    if let Some(t) = args.model.get("test_cfg") {
        cfg.test_cfg = Some(t.extract::<RetinaTestConfig>()?);
    }
    let invalid = |e: RetinaError| BuildError::invalid(node, None, e.to_string());
    if !cfg.loss_cls.use_sigmoid {
        return Err(invalid(RetinaError::Softmax));
    }
    let logic = RetinaLogic::new(&cfg).map_err(invalid)?;
    check_neck(node, cfg.in_channels, logic.anchors.num_levels(), args.neck)?;
    Ok(AnchorHeadParts {
        num_anchors: logic.anchors.num_base_anchors(),
        cfg,
        logic,
    })
}

/// Deserialises a head's node without `own_keys` (a plugin head's own settings, read by the
/// plugin), so that every other key must be one of `T`'s.
fn read_shared_keys<T: serde::de::DeserializeOwned>(
    node: &ConfigNode<'_>,
    own_keys: &[&str],
) -> Result<T, BuildError> {
    if own_keys.is_empty() {
        return Ok(node.extract()?);
    }
    let mut shared = node.value().clone();
    if let toml::Value::Table(t) = &mut shared {
        t.retain(|k, _| {
            let k: &str = k;
            !own_keys.contains(&k)
        });
    }
    shared
        .try_into()
        .map_err(|e: toml::de::Error| BuildError::invalid(node, None, e.message()))
}

/// What every region proposal head shares, read from its node: RPNHead's keys
/// (`in_channels`, `feat_channels`, `anchor_generator`, `bbox_coder`, `loss_cls`, `loss_bbox`)
/// and the proposal logic built from them.
pub struct ProposalHeadParts {
    pub cfg: RpnHeadConfig,
    pub logic: RpnLogic,
    /// Anchors per location (`A`).
    pub num_anchors: usize,
}

/// Reads [`ProposalHeadParts`] from `args.node`, whose keys are RPNHead's and `own_keys` (a
/// plugin head's own); any other key is an error. Also checks the head against the neck.
pub fn proposal_head_parts(
    args: &DenseHeadArgs<'_, '_>,
    own_keys: &[&str],
) -> Result<ProposalHeadParts, BuildError> {
    let node = args.node;
    let cfg: RpnHeadConfig = read_shared_keys(node, own_keys)?;
    let invalid = |e: RpnError| BuildError::invalid(node, None, e.to_string());
    if !cfg.loss_cls.use_sigmoid {
        return Err(invalid(RpnError::Softmax));
    }
    let logic = RpnLogic::new(&cfg).map_err(invalid)?;
    check_neck(node, cfg.in_channels, logic.anchors.num_levels(), args.neck)?;
    Ok(ProposalHeadParts {
        num_anchors: logic.anchors.num_base_anchors(),
        cfg,
        logic,
    })
}

/// `RetinaHead`.
fn build_retina(args: &DenseHeadArgs<'_, '_>) -> Result<DenseHead, BuildError> {
    let parts = anchor_head_parts(args, &[])?;
    let head = RetinaHead::new(&parts.cfg, args.device)
        .map_err(|e| BuildError::invalid(args.node, None, e.to_string()))?;
    Ok(DenseHead::SingleStage(
        Box::new(SingleStageHead::Retina(head)),
        Box::new(parts.logic),
    ))
}

/// `RPNHead`.
fn build_rpn(args: &DenseHeadArgs<'_, '_>) -> Result<DenseHead, BuildError> {
    let parts = proposal_head_parts(args, &[])?;
    let head = RpnHead::new(&parts.cfg, args.device)
        .map_err(|e| BuildError::invalid(args.node, None, e.to_string()))?;
    Ok(DenseHead::Proposal(
        Box::new(ProposalHead::Rpn(head)),
        Box::new(parts.logic),
    ))
}

inventory::submit! {
    DenseHeadEntry::new("RetinaHead", DenseHeadBuilder { role: DenseRole::SingleStage, build: build_retina })
}
inventory::submit! {
    DenseHeadEntry::new("RPNHead", DenseHeadBuilder { role: DenseRole::Proposal, build: build_rpn })
}
