//! The box and mask heads of a RoI head stage, of any registered type.
//!
//! The built-in heads are variants ([`ConvFcBBoxHead`], [`FcnMaskHead`]); a plugin's head is
//! an ordinary `#[derive(Module)]` struct implementing [`RoiBBoxHeadModule`] or
//! [`RoiMaskHeadModule`], held type-erased (burn's `Module` is not object-safe; see
//! `mona_core::dyn_module`) with its own field names as parameter keys
//! (`roi_head.bbox_head.{i}.<field>...`). A plugin's builder, registered into
//! [`super::BBoxHeadEntry`] or [`super::MaskHeadEntry`], receives the stage's config
//! ([`super::BBoxHeadConfig`], [`super::FcnMaskHeadConfig`]): its layer sizes come from those
//! keys, and its outputs are trained and decoded by the stage's logic as mmdet's `BBoxHead` /
//! `FCNMaskHead` outputs are (targets, losses, box refinement, NMS, mask pasting).

use burn::module::{Module, ModuleDisplay};
use burn::tensor::Tensor;

use mona_core::dyn_module::{DynModule, UnsupportedRank};

use super::bbox_head::ConvFcBBoxHead;
use super::mask_head::{FcnMaskHead, MaskHeadError, mask_loss};

/// A box head of another crate.
pub trait RoiBBoxHeadModule: Module + ModuleDisplay + Sync + 'static {
    /// On RoI features `(n, C, h, w)`: `(cls_score (n, num_classes + 1), bbox_pred (n, 4)` or
    /// `(n, 4·num_classes)` with `reg_class_agnostic = false`). `training` selects batch
    /// statistics for batch norms. No RoIs must give empty outputs.
    fn forward(&self, x: Tensor<4>, training: bool) -> (Tensor<2>, Tensor<2>);
}

/// A mask head of another crate.
pub trait RoiMaskHeadModule: Module + ModuleDisplay + Sync + 'static {
    /// On RoI features `(n, C, h, w)`: mask logits `(n, C', S, S)` with `C' = num_classes`
    /// (or 1 when `class_agnostic`) and `S` the training target size (`mask_size`).
    fn forward(&self, x: Tensor<4>) -> Tensor<4>;
}

/// The functions a stage calls on a plugin box head.
#[derive(Clone, Copy, Debug)]
pub struct BBoxHeadOps {
    forward: fn(&PluginBBoxHead, Tensor<4>, bool) -> (Tensor<2>, Tensor<2>),
}

/// A plugin's box head, its type erased.
pub type PluginBBoxHead = DynModule<BBoxHeadOps>;

/// A stage's box head. Variant names never appear in parameter keys.
// A model holds one head per slot, so the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum BBoxHead {
    ConvFc(ConvFcBBoxHead),
    Plugin(PluginBBoxHead),
}

impl BBoxHead {
    /// Wraps a plugin's box head. Fails only for a parameter of rank above
    /// `mona_core::dyn_module::MAX_RANK`.
    pub fn plugin<H: RoiBBoxHeadModule>(head: H) -> Result<Self, UnsupportedRank> {
        let ops = BBoxHeadOps {
            forward: |m, x, training| match m.get::<H>() {
                Some(h) => h.forward(x, training),
                // The ops are built here together with the module they are given.
                None => unreachable!("a BBoxHeadOps travels with its own head type"),
            },
        };
        DynModule::new(head, ops).map(BBoxHead::Plugin)
    }

    /// `(cls_score, bbox_pred)` of RoI features.
    pub fn forward(&self, x: Tensor<4>, training: bool) -> (Tensor<2>, Tensor<2>) {
        match self {
            BBoxHead::ConvFc(h) => h.forward(x, training),
            BBoxHead::Plugin(h) => (h.ops().forward)(h, x, training),
        }
    }
}

/// The functions and loss settings a stage uses with a plugin mask head.
#[derive(Clone, Copy, Debug)]
pub struct MaskHeadOps {
    forward: fn(&PluginMaskHead, Tensor<4>) -> Tensor<4>,
    loss: MaskLossSettings,
}

/// What mmdet's `FCNMaskHead.loss` needs besides the predictions (from the stage's config).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskLossSettings {
    pub num_classes: usize,
    pub class_agnostic: bool,
    pub loss_weight: f32,
}

impl MaskLossSettings {
    /// mmdet's mask loss of `mask_pred` under these settings (see [`mask_loss`]).
    pub fn loss(
        &self,
        mask_pred: Tensor<4>,
        mask_targets: &[f32],
        labels: &[i64],
    ) -> Result<Tensor<1>, MaskHeadError> {
        mask_loss(
            mask_pred,
            mask_targets,
            labels,
            self.num_classes,
            self.class_agnostic,
            self.loss_weight,
        )
    }
}

/// A plugin's mask head, its type erased.
pub type PluginMaskHead = DynModule<MaskHeadOps>;

/// A stage's mask head. Variant names never appear in parameter keys.
// A model holds one head per slot, so the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum MaskHead {
    Fcn(FcnMaskHead),
    Plugin(PluginMaskHead),
}

impl MaskHead {
    /// Wraps a plugin's mask head, trained with mmdet's mask loss under `loss`.
    pub fn plugin<H: RoiMaskHeadModule>(
        head: H,
        loss: MaskLossSettings,
    ) -> Result<Self, UnsupportedRank> {
        let ops = MaskHeadOps {
            forward: |m, x| match m.get::<H>() {
                Some(h) => h.forward(x),
                None => unreachable!("a MaskHeadOps travels with its own head type"),
            },
            loss,
        };
        DynModule::new(head, ops).map(MaskHead::Plugin)
    }

    /// Mask logits of RoI features.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            MaskHead::Fcn(h) => h.forward(x),
            MaskHead::Plugin(h) => (h.ops().forward)(h, x),
        }
    }

    /// mmdet's mask loss of `mask_pred` (see [`mask_loss`]).
    pub fn loss(
        &self,
        mask_pred: Tensor<4>,
        mask_targets: &[f32],
        labels: &[i64],
    ) -> Result<Tensor<1>, MaskHeadError> {
        let settings = match self {
            MaskHead::Fcn(h) => h.loss_settings(),
            MaskHead::Plugin(h) => h.ops().loss,
        };
        settings.loss(mask_pred, mask_targets, labels)
    }
}
