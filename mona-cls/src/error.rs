//! What can go wrong while batching and evaluating classification data.

use mona_data::DataError;

/// A classification batch or evaluation that failed; data errors name their file.
#[derive(Debug, thiserror::Error)]
pub enum ClsError {
    #[error(transparent)]
    Data(#[from] DataError),
    /// Evaluation needs a label for every image.
    #[error("the evaluation set has unlabelled samples")]
    Unlabelled,
    /// Scores could not be read back from the device.
    #[error("reading the scores back from the device: {0}")]
    Readback(String),
    #[error("{}: cannot write: {message}", path.display())]
    Write {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("metric \"{0}\" is not registered for classification")]
    UnknownMetric(String),
    /// A sharded evaluation's exchange between the processes failed.
    #[error(transparent)]
    Dist(#[from] mona_core::dist::DistError),
}
