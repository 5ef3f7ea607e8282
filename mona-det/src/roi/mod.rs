//! The RoI heads' parts: feature extraction (the `roi_layer` config, RoIAlign, whose op lives
//! in `crate::ops::roi_align`, and mmdet's multi-level `SingleRoIExtractor`), the box head
//! (config, learnt layers, targets / losses / post-processing), the mask head, and the
//! stage heads of any registered type, plugins' included.

pub mod bbox_config;
pub mod bbox_head;
pub mod bbox_logic;
pub mod extractor;
pub mod mask_head;
pub mod mask_ops;
pub mod roi_align;
pub mod stage_heads;

pub use bbox_config::{BBoxHeadConfig, BBoxHeadError, RcnnTestConfig};
pub use bbox_head::{BBoxHeadEntry, ConvFcBBoxHead, bbox2roi};
pub use bbox_logic::{BBoxHeadLogic, BBoxLosses, BBoxTargets, multiclass_nms};
pub use extractor::{RoiExtractorError, SingleRoIExtractor, SingleRoIExtractorConfig};
pub use mask_head::{FcnMaskHead, FcnMaskHeadConfig, MaskHeadEntry, MaskHeadError, mask_loss};
pub use mask_ops::{MaskOpsError, encode_rle, get_seg_masks, mask_targets, paste_mask};
pub use roi_align::{Roi, RoiAlignConfig, RoiAlignError, RoiLayerConfig, roi_align};
pub use stage_heads::{BBoxHead, MaskHead, MaskLossSettings, RoiBBoxHeadModule, RoiMaskHeadModule};
