//! Tensor operations the heads rely on, written once for every backend (burn 0.22.1 lacks
//! them or gets them subtly different from PyTorch): each is checked against the `ops`
//! fixture group of the same name in `tests/fixtures.rs`.

pub mod boxes;
pub mod cross_entropy;
pub mod focal_loss;
pub mod nms;
pub mod pool;
pub mod resize;
pub mod roi_align;
