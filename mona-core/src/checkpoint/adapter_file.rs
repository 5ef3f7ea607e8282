//! Adapter-only files: just the trainable parameters of a tuned model, as safetensors, with
//! the method and the config in the metadata. Loaded on top of the same pretrained backbone
//! they restore the tuned model exactly; they are a few MB where the full model is hundreds.

use std::collections::HashMap;
use std::path::Path;

use burn::module::Module;

use super::{
    CheckpointError, KeyReport, LoadOptions, StateDict, load_state_dict, write_safetensors,
};
use crate::params::param_data;

/// Metadata key holding the file format tag.
pub const FORMAT_KEY: &str = "format";
/// The format tag of adapter files.
pub const FORMAT: &str = "mona-adapter/1";
/// Metadata key holding the tuning method's registered name.
pub const METHOD_KEY: &str = "method";
/// Metadata key holding the config (TOML) the model was built from.
pub const CONFIG_KEY: &str = "config";

/// Writes the parameters of `module` whose key passes `trainable`, with the method, the config
/// and the class names (when there are any); returns how many.
pub fn save_adapter<M: Module>(
    module: &M,
    trainable: &dyn Fn(&str) -> bool,
    path: &Path,
    method: &str,
    config_toml: &str,
    classes: &[String],
) -> Result<usize, CheckpointError> {
    let tensors = param_data(module, trainable);
    let mut metadata = HashMap::from([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        (METHOD_KEY.to_string(), method.to_string()),
        (CONFIG_KEY.to_string(), config_toml.to_string()),
    ]);
    if !classes.is_empty() {
        let list = serde_json::to_string(classes).unwrap_or_default();
        metadata.insert(super::CLASSES_KEY.to_string(), list);
    }
    write_safetensors(path, &tensors, metadata)?;
    Ok(tensors.len())
}

/// Loads an adapter file into `module`. The file must be an adapter file of `method`, and
/// every tensor in it must land on a parameter of `module` (an adapter that loads partially
/// would silently give another model).
pub fn load_adapter<M: Module>(
    module: M,
    path: &Path,
    method: &str,
) -> Result<(M, KeyReport), CheckpointError> {
    let sd = StateDict::read(path)?;
    let err = |message: String| CheckpointError::Adapter {
        path: path.to_path_buf(),
        message,
    };
    if sd.metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        return Err(err(format!(
            "not an adapter file (metadata `{FORMAT_KEY}` is not `{FORMAT}`)"
        )));
    }
    match sd.metadata.get(METHOD_KEY) {
        Some(m) if m == method => {}
        Some(m) => {
            return Err(err(format!(
                "adapter of method `{m}` cannot be loaded into a `{method}` model"
            )));
        }
        None => return Err(err(format!("metadata `{METHOD_KEY}` is missing"))),
    }
    let (module, report) = load_state_dict(module, &sd, &LoadOptions::default())?;
    if !report.unused.is_empty() {
        return Err(err(format!(
            "{} tensor(s) match no parameter of the model: {}",
            report.unused.len(),
            report
                .unused
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok((module, report))
}
