//! RoI feature extraction for two-stage heads: the `roi_layer` config (RoIAlign, whose op
//! lives in `crate::ops::roi_align`) and mmdet's multi-level `SingleRoIExtractor`.

pub mod bbox_head;
pub mod extractor;
pub mod mask_head;
pub mod mask_ops;
pub mod roi_align;

pub use bbox_head::{
    BBoxHeadConfig, BBoxHeadEntry, BBoxHeadError, BBoxHeadLogic, BBoxLosses, BBoxTargets,
    ConvFcBBoxHead, RcnnTestConfig, bbox2roi, multiclass_nms,
};
pub use extractor::{RoiExtractorError, SingleRoIExtractor, SingleRoIExtractorConfig};
pub use mask_head::{FcnMaskHead, FcnMaskHeadConfig, MaskHeadEntry, MaskHeadError, mask_loss};
pub use mask_ops::{MaskOpsError, encode_rle, get_seg_masks, mask_targets, paste_mask};
pub use roi_align::{Roi, RoiAlignConfig, RoiAlignError, RoiLayerConfig, roi_align};
