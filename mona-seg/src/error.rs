//! What can go wrong while batching, evaluating and drawing segmentation data.

use std::path::PathBuf;

use mona_data::DataError;

/// A segmentation batch, evaluation or overlay that failed; every variant names its file.
#[derive(Debug, thiserror::Error)]
pub enum SegError {
    #[error(transparent)]
    Data(#[from] DataError),
    /// A collective of a sharded evaluation.
    #[error(transparent)]
    Dist(#[from] mona_core::dist::DistError),
    /// A label map of another size than its image, after the pipeline.
    #[error("{}: label map {label_w}x{label_h} does not match the image {image_w}x{image_h}", .path.display())]
    LabelSize {
        path: PathBuf,
        label_w: u32,
        label_h: u32,
        image_w: usize,
        image_h: usize,
    },
    /// A ground-truth label map of another size than its image, at evaluation.
    #[error("{}: label map is {label_w}x{label_h} but the image is {image_w}x{image_h}", .path.display())]
    GtSize {
        path: PathBuf,
        label_w: u32,
        label_h: u32,
        image_w: u32,
        image_h: u32,
    },
    /// The prediction could not be read back from the device.
    #[error("{}: reading the prediction back from the device: {message}", .path.display())]
    Readback { path: PathBuf, message: String },
    /// An overlay could not be written.
    #[error("{}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
    #[error("metric \"{0}\" is not registered for segmentation")]
    UnknownMetric(String),
    #[error("test-time augmentation without a view")]
    NoViews,
}
