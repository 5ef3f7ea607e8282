//! Loading the config named on a command line, with its `--cfg-options`.

use std::path::Path;

use mona_core::config::{Config, ConfigError, unknown_keys};

use crate::ToolError;

/// Reads `path` (resolving `_base_`) and applies `options` (`a.b.c=value`, mmcv semantics).
pub fn load_config(path: &Path, options: &[String]) -> Result<Config, ConfigError> {
    let mut config = Config::from_file(path)?;
    config.apply_options(options)?;
    Ok(config)
}

/// Warns about every config key that nothing reads (a typo such as `[optimzer]` or
/// `runner.max_epoch`, with the nearest known key); with `strict` (`--strict`) they are an
/// error instead.
pub fn check_keys(config: &Config, strict: bool) -> Result<(), ToolError> {
    let unknown = unknown_keys(config);
    if strict && !unknown.is_empty() {
        let list: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        return Err(ToolError::UnknownKeys(list.join("; ")));
    }
    for key in &unknown {
        tracing::warn!("{key}; it is ignored (--strict makes this an error)");
    }
    Ok(())
}
