//! The `roi_layer` config of mmdet's RoI extractors (`type = "RoIAlign"`). The op itself is
//! [`crate::ops::roi_align`], kept in the core so that the `ops` golden fixture (checked
//! by the core's fixture test) and the detectors run the same single implementation.

use serde::Deserialize;

pub use crate::ops::roi_align::{Roi, RoiAlignConfig, RoiAlignError, roi_align};

/// `output_size`: an int (square) or `[h, w]`, as mmcv accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum OutputSize {
    Square(usize),
    Rect([usize; 2]),
}

impl OutputSize {
    pub fn hw(self) -> [usize; 2] {
        match self {
            OutputSize::Square(s) => [s, s],
            OutputSize::Rect(hw) => hw,
        }
    }
}

/// mmcv's `RoIAlign(output_size, spatial_scale, sampling_ratio=0, pool_mode='avg',
/// aligned=True, use_torchvision=False)` as a config; `spatial_scale` comes from the
/// extractor's `featmap_strides`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoiLayerConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub output_size: OutputSize,
    #[serde(default)]
    pub sampling_ratio: usize,
    #[serde(default = "avg")]
    pub pool_mode: String,
    #[serde(default = "yes")]
    pub aligned: bool,
    /// torchvision's RoIAlign has the same semantics for `aligned=True`; accepted and ignored.
    #[serde(default)]
    pub use_torchvision: bool,
}

fn avg() -> String {
    "avg".into()
}
fn yes() -> bool {
    true
}

impl RoiLayerConfig {
    /// The op settings for a level of stride `stride`.
    pub fn at_stride(&self, stride: usize) -> RoiAlignConfig {
        RoiAlignConfig {
            output_size: self.output_size.hw(),
            spatial_scale: 1.0 / stride as f32,
            sampling_ratio: self.sampling_ratio,
            aligned: self.aligned,
        }
    }
}
