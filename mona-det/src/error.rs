//! What can go wrong in detection's batching, prediction, scoring and outputs. Each error
//! names the image, file or metric it concerns; the model's own failures travel boxed, since
//! a [`crate::detector::Detector`] may come from another crate.

use std::path::PathBuf;

use mona_core::runner::BoxError;

/// A batch that cannot be collated: its images or annotations disagree.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("empty batch")]
    Empty,
    #[error("{}: expected a normalised 3-channel image, found {found}; add Normalize to the pipeline", path.display())]
    NotNormalised { path: PathBuf, found: String },
    #[error("{}: {boxes} boxes but {labels} labels", path.display())]
    Labels {
        path: PathBuf,
        boxes: usize,
        labels: usize,
    },
    #[error("{}: {boxes} boxes but {masks} masks", path.display())]
    Masks {
        path: PathBuf,
        boxes: usize,
        masks: usize,
    },
}

/// A failed prediction, scoring or output of detection.
#[derive(Debug, thiserror::Error)]
pub enum DetError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Data(#[from] mona_data::DataError),
    /// The detector's own error (a head's post-processing, a bad image meta).
    #[error(transparent)]
    Model(BoxError),
    #[error(transparent)]
    Coco(#[from] crate::metrics::coco::CocoEvalError),
    #[error("the VOC boxes in COCO form: {0}")]
    VocAsCoco(serde_json::Error),
    #[error("metric \"segm\" needs a COCO dataset with instance masks")]
    SegmNeedsCoco,
    #[error("metric \"segm\" needs a model with a mask head")]
    SegmNeedsMasks,
    #[error("metric \"{0}\" is not registered for detection")]
    UnknownMetric(String),
    /// A sharded evaluation's exchange between the processes failed.
    #[error(transparent)]
    Dist(#[from] mona_core::dist::DistError),
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: cannot encode: {source}", path.display())]
    Encode {
        path: PathBuf,
        source: image::ImageError,
    },
}
