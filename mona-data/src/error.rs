//! The one error type of data loading.
//!
//! Training runs for days over tens of thousands of files; an error that says "invalid label"
//! without the file and line would send the user grepping. Every variant therefore names the
//! file it is about (the image, the annotation file, the class list) and, for text files, the
//! 1-based line.

use std::path::PathBuf;

/// Everything that can go wrong while reading annotations, decoding images, transforming,
/// batching or loading samples.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An image file could not be read (missing, unreadable).
    #[error("cannot read image {}: {source}", .path.display())]
    ImageRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An image file was read but is not a decodable PNG/JPEG/BMP image.
    #[error("cannot decode image {}: {source}", .path.display())]
    ImageDecode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    /// A text file (annotation list, class list) or a folder could not be read.
    #[error("cannot read {what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A line of an annotation or class file is malformed. `line` is 1-based.
    #[error("{}:{line}: {message}", .path.display())]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },

    /// A label of an annotation file is not below the number of classes.
    #[error(
        "{}:{line}: label {label} is out of range: the dataset has {num_classes} classes \
         (labels are 0-based)",
        .path.display()
    )]
    LabelOutOfRange {
        path: PathBuf,
        line: usize,
        label: usize,
        num_classes: usize,
    },

    /// A head's class count does not fit the dataset's classes.
    #[error("{head_key} is {num_classes}, but {data_key} {found}; set {head_key} = {needed}")]
    HeadClasses {
        head_key: String,
        num_classes: usize,
        data_key: String,
        /// What the dataset has, in words ("has 10 classes", "has labels up to 9").
        found: String,
        needed: usize,
    },

    /// An annotation file, class file or image folder holds no entries.
    #[error("{}: {message}", .path.display())]
    Empty { path: PathBuf, message: String },

    /// A transform cannot process the sample (wrong image kind, missing key, bad geometry).
    #[error("{}: {transform}: {message}", .path.display())]
    Transform {
        path: PathBuf,
        transform: &'static str,
        message: String,
    },

    /// A batch cannot be stacked (mixed sizes, not normalised, no label).
    #[error("cannot batch {}: {message}", .path.display())]
    Batch { path: PathBuf, message: String },

    /// A batch was empty where a non-empty one is required.
    #[error("cannot batch an empty list of samples")]
    EmptyBatch,

    /// A dataset index past the end.
    #[error("sample index {index} is out of range: the dataset has {len} samples")]
    IndexOutOfRange { index: usize, len: usize },

    /// A loader argument is invalid (batch size 0).
    #[error("invalid data loader setting: {0}")]
    Loader(String),

    /// A loader worker thread panicked or stopped before delivering its batch.
    #[error("data loader worker {worker} failed on batch {batch}: {message}")]
    Worker {
        worker: usize,
        batch: usize,
        message: String,
    },
}

impl DataError {
    /// A [`DataError::Transform`] about the sample at `path`.
    pub fn transform(
        path: impl Into<PathBuf>,
        transform: &'static str,
        message: impl Into<String>,
    ) -> Self {
        DataError::Transform {
            path: path.into(),
            transform,
            message: message.into(),
        }
    }

    /// A [`DataError::Line`] about line `line` (1-based) of `path`.
    pub fn line(path: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        DataError::Line {
            path: path.into(),
            line,
            message: message.into(),
        }
    }
}
