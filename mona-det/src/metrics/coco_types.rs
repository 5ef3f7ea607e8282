//! What COCO evaluation is asked for and how it fails.

use std::path::PathBuf;

/// What is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CocoIouType {
    Bbox,
    Segm,
}

impl std::str::FromStr for CocoIouType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bbox" => Ok(Self::Bbox),
            "segm" => Ok(Self::Segm),
            other => Err(format!("unknown iou type `{other}` (bbox or segm)")),
        }
    }
}

/// A failed COCO evaluation, naming the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CocoEvalError {
    #[error("{}: cannot read COCO annotations: {source}", path.display())]
    Annotations {
        path: PathBuf,
        source: hotcoco::Error,
    },
    #[error("{}: cannot read detection results: {source}", path.display())]
    Results {
        path: PathBuf,
        source: hotcoco::Error,
    },
    /// Input pycocotools refuses (an assertion or a `KeyError` there), named precisely here.
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("COCO evaluation failed: {0}")]
    Evaluate(hotcoco::Error),
    #[error("max_dets needs 3 values (small, medium, largest), got {0:?}")]
    MaxDets(Vec<usize>),
    #[error("COCO evaluation gave {0} statistics, expected 12")]
    Stats(usize),
}
