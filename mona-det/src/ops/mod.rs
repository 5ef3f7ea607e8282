//! Tensor operations only detection uses, written once for every backend (burn 0.22.1 lacks
//! them or gets them subtly different from PyTorch / mmcv): box geometry, NMS, RoIAlign and
//! the sigmoid focal loss. Each is checked against the `ops` fixture group of the same name.

pub mod boxes;
pub mod focal_loss;
pub mod nms;
pub mod roi_align;
