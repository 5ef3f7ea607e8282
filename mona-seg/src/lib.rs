//! Semantic segmentation (mmseg 0.x `EncoderDecoder`): a Swin backbone tuned by any method,
//! decode heads chosen by name (`UPerHead`, `FCNHead`, or a plugin's), pixel cross entropy with ignore index 255,
//! whole / slide inference, mIoU.

pub mod classes;
pub mod dataset;
pub mod decode_head;
pub mod error;
pub mod heads;
pub mod inference;
pub mod label_map;
pub mod metrics;
pub mod segmentor;
pub mod task;
pub mod tta;

pub use decode_head::{DecodeHead, SegDecodeHead, SegHeadEntry};
pub use heads::{ConvModule, FCNHead, UPerHead};
pub use segmentor::{EncoderDecoder, SegBatch, TestCfg};

/// Call from binaries so the linker keeps this crate's registrations (an unreferenced crate
/// is dropped with its `inventory` entries).
#[inline(never)]
pub fn link() {
    std::hint::black_box(task::palette as fn(u8) -> [u8; 3]);
    std::hint::black_box(decode_head::build_head as fn(&_, &_) -> _);
    std::hint::black_box(
        dataset::build_concrete
            as fn(&mona_core::config::ConfigNode<'_>) -> Result<dataset::SegDataset, _>,
    );
}
