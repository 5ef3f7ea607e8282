//! The error type of the tools library. Every message names the file involved.

use mona_core::checkpoint::CheckpointError;
use mona_core::config::ConfigError;
use mona_core::registry::BuildError;

/// What can go wrong in a tool.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Boxed: a registry error carries the registered names and would make every `Result`
    /// of this crate large.
    #[error(transparent)]
    Build(Box<BuildError>),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// Converting through a backbone matched no key of the file.
    #[error(
        "{input}: no tensor maps onto the backbone of {config} (the file's keys look like `{file_keys}`, the backbone's like `{model_keys}`); nothing written"
    )]
    NothingApplied {
        input: std::path::PathBuf,
        config: std::path::PathBuf,
        file_keys: String,
        model_keys: String,
    },
    /// `--merge-lora` cannot merge this file with this config.
    #[error("{path}: --merge-lora: {message}")]
    MergeLora {
        path: std::path::PathBuf,
        message: String,
    },
    /// Config keys nothing reads, under `--strict`.
    #[error("{0} (--strict)")]
    UnknownKeys(String),
    /// A model's registration could not build it (`count-params`).
    #[error(transparent)]
    Task(Box<mona_core::task::TaskError>),
    /// A device failed to run or synchronise its work.
    #[error("device error: {0}")]
    Device(String),
}

impl From<BuildError> for ToolError {
    fn from(error: BuildError) -> Self {
        ToolError::Build(Box::new(error))
    }
}

impl From<mona_core::registry::RegistryError> for ToolError {
    fn from(error: mona_core::registry::RegistryError) -> Self {
        ToolError::Build(Box::new(error.into()))
    }
}

impl From<mona_core::task::TaskError> for ToolError {
    fn from(error: mona_core::task::TaskError) -> Self {
        ToolError::Task(Box::new(error))
    }
}
