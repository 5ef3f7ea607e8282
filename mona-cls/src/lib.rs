//! Image classification (mmcls 0.x `ImageClassifier`): a Swin backbone tuned by any method,
//! global average pooling, a linear head, softmax cross entropy, top-k accuracy.

pub mod data;
pub mod error;
pub mod inference;
pub mod metrics;
pub mod model;
pub mod task;

pub use metrics::{accuracy_topk, topk_correct};
pub use model::{ClsHeadEntry, ClsNeckEntry, ImageClassifier, LinearClsHead};

/// Call from binaries so the linker keeps this crate's registrations (an unreferenced crate
/// is dropped with its `inventory` entries).
#[inline(never)]
pub fn link() {
    std::hint::black_box(model::ClsNeck::GlobalAveragePooling);
}
