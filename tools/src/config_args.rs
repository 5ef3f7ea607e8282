//! Loading the config named on a command line, with its `--cfg-options`.

use std::path::Path;

use mona_core::config::{Config, ConfigError};

/// Reads `path` (resolving `_base_`) and applies `options` (`a.b.c=value`, mmcv semantics).
pub fn load_config(path: &Path, options: &[String]) -> Result<Config, ConfigError> {
    let mut config = Config::from_file(path)?;
    config.apply_options(options)?;
    Ok(config)
}
