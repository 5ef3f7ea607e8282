//! Training checkpoints: one safetensors file holding the model (`state_dict.<key>`), the
//! optimizer state (`optimizer.<exp_avg|exp_avg_sq|momentum_buffer>.<key>`) and, in the
//! metadata, the position (completed iterations and epochs), the seed and the config. Files
//! are written atomically and `last_checkpoint` (a one-line text file naming the newest
//! checkpoint) is updated only after the checkpoint itself is complete, so a run killed
//! mid-write resumes from the previous checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{CheckpointError, StateDict, write_safetensors};

/// Format tag in the metadata.
pub const FORMAT: &str = "mona-checkpoint/1";
/// The pointer file naming the newest checkpoint in a work dir.
pub const LAST_CHECKPOINT: &str = "last_checkpoint";

/// Where training stood when the checkpoint was written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Completed iterations.
    pub iter: usize,
    /// Completed epochs (`iter / epoch_len` for iteration-based runs).
    pub epoch: usize,
    pub epoch_len: usize,
    pub seed: u64,
    /// The tuning method of the backbone.
    pub method: String,
    /// The merged config the run used (TOML).
    pub config: String,
    /// Optimizer step count of each parameter.
    pub optimizer_steps: BTreeMap<String, u64>,
    /// The best checkpoint so far under `evaluation.save_best` (absent in older checkpoints
    /// and in runs without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<super::save_best::Best>,
    /// The dataset's class names (mmdet's `meta['CLASSES']`; absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

/// A checkpoint read back.
pub struct TrainingCheckpoint {
    pub meta: CheckpointMeta,
    pub model: StateDict,
    pub optimizer: BTreeMap<String, TensorData>,
}

/// Writes a checkpoint and then points `last_checkpoint` at it.
pub fn write_checkpoint(
    work_dir: &Path,
    file_name: &str,
    model: &[(String, TensorData)],
    optimizer: &[(String, TensorData)],
    meta: &CheckpointMeta,
) -> Result<PathBuf, CheckpointError> {
    let path = write_checkpoint_file(work_dir, file_name, model, optimizer, meta)?;
    crate::checkpoint::write_atomic_text(&work_dir.join(LAST_CHECKPOINT), file_name).map_err(
        |source| CheckpointError::Write {
            path: work_dir.join(LAST_CHECKPOINT),
            source,
        },
    )?;
    Ok(path)
}

/// Writes a checkpoint without moving `last_checkpoint` (the best checkpoint of
/// `evaluation.save_best`, which a resume does not continue from).
pub fn write_checkpoint_file(
    work_dir: &Path,
    file_name: &str,
    model: &[(String, TensorData)],
    optimizer: &[(String, TensorData)],
    meta: &CheckpointMeta,
) -> Result<PathBuf, CheckpointError> {
    let path = work_dir.join(file_name);
    let mut tensors = Vec::with_capacity(model.len() + optimizer.len());
    tensors.extend(
        model
            .iter()
            .map(|(k, v)| (format!("state_dict.{k}"), v.clone())),
    );
    tensors.extend(
        optimizer
            .iter()
            .map(|(k, v)| (format!("optimizer.{k}"), v.clone())),
    );
    let meta_json = serde_json::to_string(meta).map_err(|e| CheckpointError::Format {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("meta".to_string(), meta_json),
    ]);
    write_safetensors(&path, &tensors, metadata)?;
    Ok(path)
}

/// Reads a training checkpoint written by [`write_checkpoint`].
pub fn read_checkpoint(path: &Path) -> Result<TrainingCheckpoint, CheckpointError> {
    let sd = StateDict::read_raw(path)?;
    let bad = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    if sd.metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "not a training checkpoint (metadata `format` is not `{FORMAT}`); use --load-from for weights"
        )));
    }
    let meta: CheckpointMeta = serde_json::from_str(
        sd.metadata
            .get("meta")
            .ok_or_else(|| bad("metadata `meta` is missing".into()))?,
    )
    .map_err(|e| bad(format!("metadata `meta`: {e}")))?;
    let model = StateDict {
        path: path.to_path_buf(),
        tensors: sd.with_prefix_stripped("state_dict."),
        ..Default::default()
    };
    Ok(TrainingCheckpoint {
        meta,
        model,
        optimizer: sd.with_prefix_stripped("optimizer."),
    })
}

/// The checkpoint an automatic resume continues from: the one `work_dir/last_checkpoint`
/// names. `Ok(None)` only when the work dir holds no checkpoint at all (a first run, which
/// starts from the beginning). A missing, empty or dangling pointer beside checkpoint files
/// is an error naming them: silently starting over would overwrite the run's progress, and
/// guessing the newest file by name or date could pick a half-written or foreign one.
pub fn find_last_checkpoint(work_dir: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    let pointer = work_dir.join(LAST_CHECKPOINT);
    let checkpoints = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(work_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.ends_with(".safetensors") && (n.starts_with("epoch_") || n.starts_with("iter_"))
            })
            .collect();
        names.sort();
        names
    };
    let bad = |message: String| CheckpointError::Pointer {
        path: pointer.clone(),
        message,
    };
    let name = match std::fs::read_to_string(&pointer) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let found = checkpoints();
            if found.is_empty() {
                return Ok(None);
            }
            return Err(bad(format!(
                "missing, but the work dir holds checkpoints ({}); resume from one with --resume PATH",
                found.join(", ")
            )));
        }
        Err(source) => {
            return Err(CheckpointError::Io {
                path: pointer,
                source,
            });
        }
    };
    let name = name.trim();
    if name.is_empty() || name.contains('\n') {
        return Err(bad(format!(
            "does not name one checkpoint file (read {name:?}); resume from one with --resume PATH"
        )));
    }
    let path = work_dir.join(name);
    if !path.is_file() {
        let found = checkpoints();
        return Err(bad(format!(
            "names {name}, which is not a file in the work dir (checkpoints there: {}); resume from one with --resume PATH",
            if found.is_empty() {
                "none".to_string()
            } else {
                found.join(", ")
            }
        )));
    }
    Ok(Some(path))
}
