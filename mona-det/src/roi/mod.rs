//! RoI feature extraction for two-stage heads: the `roi_layer` config (RoIAlign, whose op
//! lives in `mona_core::ops::roi_align`) and mmdet's multi-level `SingleRoIExtractor`.

pub mod extractor;
pub mod roi_align;

pub use extractor::{RoiExtractorError, SingleRoIExtractor, SingleRoIExtractorConfig};
pub use roi_align::{Roi, RoiAlignConfig, RoiAlignError, RoiLayerConfig, roi_align};
