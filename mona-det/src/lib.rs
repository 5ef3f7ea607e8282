//! Object detection (mmdet 2.x style): anchors, box coders, assigners, FPN, RetinaNet heads,
//! and the VOC / COCO evaluation metrics.

pub mod anchor;
pub mod assigner;
pub mod batch;
pub mod cascade;
pub mod coder;
pub mod component_types;
pub mod data;
pub mod datasets;
pub mod detector;
pub mod error;
pub mod evaluation;
pub mod fpn;
pub mod heads;
pub mod inference;
pub mod losses;
pub mod metrics;
pub mod model;
pub mod neck;
pub mod ops;
pub mod results;
pub mod retina;
pub mod roi;
pub mod rpn;
pub mod sampler;
pub mod sharded;
pub mod task;
pub mod tta;
pub mod visualize;

pub use anchor::{AnchorGenerator, AnchorGeneratorConfig};
pub use assigner::{AssignResult, MaxIoUAssigner, MaxIoUAssignerConfig};
pub use cascade::CascadeRcnn;
pub use coder::{DeltaCoderConfig, DeltaXYWHBBoxCoder};
pub use model::RetinaNet;
pub use neck::{DetNeckEntry, DetNeckModule, Neck};
pub use roi::{SingleRoIExtractor, SingleRoIExtractorConfig};
pub use rpn::{RpnHead, RpnHeadConfig, RpnLogic};
pub use sampler::{RandomSampler, RandomSamplerConfig, SamplerRng, SamplingResult};

/// Call from binaries so the linker keeps this crate's registrations (an unreferenced crate
/// is dropped with its `inventory` entries).
#[inline(never)]
pub fn link() {
    std::hint::black_box(evaluation::config_metrics as fn(&_) -> _);
    std::hint::black_box(neck::build_neck as fn(&_, &_, &_) -> _);
    std::hint::black_box(heads::build_dense_head as fn(&_, _) -> _);
    std::hint::black_box(roi::BBoxHeadEntry::new as fn(_, _) -> _);
    std::hint::black_box(roi::MaskHeadEntry::new as fn(_, _) -> _);
}
