//! The one error type of the config module.
//!
//! Every message names the file and, where there is one, the dotted key: a
//! config is spread over many files, and "invalid type" alone would leave the
//! user to search all of them.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while reading, merging, overriding or
/// extracting a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A config file is not valid TOML. `line` and `column` are 1-based.
    #[error("invalid TOML in {}: {message}", location(.path, *.line, *.column))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },

    /// A file listed in `_base_` does not exist.
    #[error(
        "base config {} (listed in `_base_` of {}) does not exist",
        .base.display(),
        .declared_in.display()
    )]
    MissingBase { declared_in: PathBuf, base: PathBuf },

    /// Following `_base_` leads back to a file already being loaded.
    #[error("cycle in `_base_` inheritance: {}", chain_text(.chain))]
    BaseCycle { chain: Vec<PathBuf> },

    /// Two bases of one `_base_` list define the same top-level key (mmcv
    /// forbids this: which one should win would be arbitrary).
    #[error(
        "top-level key `{key}` is defined by two bases of the same `_base_` list: {} and {}",
        .first.display(),
        .second.display()
    )]
    DuplicateBaseKey {
        key: String,
        first: PathBuf,
        second: PathBuf,
    },

    /// A table in a child config is merged over a base value that is not a
    /// table (mmcv raises `TypeError`).
    #[error(
        "{}: `{key}` is a table but the value it overrides from a base config is not; \
         add `_delete_ = true` to it to replace the base value",
        .file.display()
    )]
    DictOverNonDict { key: String, file: PathBuf },

    /// `_base_` is neither a string nor an array of strings.
    #[error("{}: invalid `_base_`: {message}", .path.display())]
    BadBaseValue { path: PathBuf, message: String },

    /// A key the caller asked for is not in the config. `file` is the file
    /// that set the nearest existing parent of the key.
    #[error("config key `{}` is not set (looked in {})", show_key(.key), .file.display())]
    MissingKey { file: PathBuf, key: String },

    /// Typed extraction failed. `key` is the full dotted key of the value
    /// that failed, `file` the file that set it.
    #[error("{}: invalid value at `{}`: {message}", .file.display(), show_key(.key))]
    Extract {
        file: PathBuf,
        key: String,
        message: String,
    },

    /// A `--cfg-options` item is malformed.
    #[error("invalid --cfg-options item `{option}`: {message}")]
    BadOption { option: String, message: String },

    /// A `--cfg-options` path goes through a list index that does not exist
    /// or through a value that is neither a table nor a list.
    #[error(
        "--cfg-options item `{option}`: cannot reach `{key}`: the path goes through a \
         missing list index or a value that is not a table (nearest existing key set in {})",
        .file.display()
    )]
    UnknownOverridePath {
        option: String,
        key: String,
        file: PathBuf,
    },

    /// Anything else wrong with a value, raised by code that interprets the
    /// config (registries, builders). Prefer [`ConfigNode::invalid`].
    ///
    /// [`ConfigNode::invalid`]: super::ConfigNode::invalid
    #[error("{}: `{}`: {message}", .file.display(), show_key(.key))]
    Invalid {
        file: PathBuf,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// Builds [`ConfigError::Invalid`].
    pub fn invalid(
        file: impl Into<PathBuf>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The root has the empty key; say so instead of printing "``".
fn show_key(key: &str) -> &str {
    if key.is_empty() { "<root>" } else { key }
}

fn location(path: &Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{}:{line}:{column}", path.display()),
        (Some(line), None) => format!("{}:{line}", path.display()),
        _ => path.display().to_string(),
    }
}

fn chain_text(chain: &[PathBuf]) -> String {
    chain
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" -> ")
}
