use std::path::PathBuf;

/// Errors of reading, loading and writing checkpoints. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: cannot read checkpoint: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable PyTorch or safetensors checkpoint: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: checkpoint holds no tensors")]
    Empty { path: PathBuf },
    #[error(
        "{path}: {key}: shape mismatch: the model expects {expected:?}, the checkpoint has {found:?}"
    )]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("{path}: strict loading failed: {missing} missing key(s) ({}), {unused} unused key(s) ({})", first.join(", "), first_unused.join(", "))]
    Strict {
        path: PathBuf,
        missing: usize,
        unused: usize,
        first: Vec<String>,
        first_unused: Vec<String>,
    },
    #[error("{path}: {message}")]
    Adapter { path: PathBuf, message: String },
    /// A work dir's `last_checkpoint` pointer that cannot be followed.
    #[error("{path}: {message}")]
    Pointer { path: PathBuf, message: String },
}
