//! Object detection (mmdet 2.x style): anchors, box coders, assigners, FPN, RetinaNet heads,
//! and the VOC / COCO evaluation metrics.

pub mod anchor;
pub mod assigner;
pub mod coder;
pub mod datasets;
pub mod fpn;
pub mod metrics;
pub mod model;
pub mod retina;

pub use anchor::{AnchorGenerator, AnchorGeneratorConfig};
pub use assigner::{AssignResult, MaxIoUAssigner, MaxIoUAssignerConfig};
pub use coder::{DeltaCoderConfig, DeltaXYWHBBoxCoder};
pub use model::RetinaNet;
