//! `load_from`: pretrained weights into a whole task model, mmcv-style.

use std::path::Path;

use burn::module::Module;

use super::{CheckpointError, KeyReport, LoadOptions, StateDict, load_state_dict};

/// Loads a checkpoint into a task model whose backbone lives under `backbone.`:
/// - a task checkpoint (mmdet/mmseg/mmcls `state_dict` with `backbone.` keys) maps 1:1;
/// - a bare backbone file (an official Swin release with its `model` key, or a converted
///   backbone) is placed under `backbone.`;
/// - tensors of another shape outside the backbone (a head trained for another class count)
///   are skipped and reported, as mmcv's `strict=False` loading does; a shape mismatch inside
///   the backbone is an error naming the key and both shapes (another architecture).
pub fn load_pretrained<M: Module>(
    model: M,
    path: &Path,
) -> Result<(M, KeyReport), CheckpointError> {
    let sd = StateDict::read(path)?;
    let has_backbone_keys = sd.tensors.keys().any(|k| k.starts_with("backbone."));
    let options = LoadOptions {
        strict: false,
        strip_prefix: None,
        add_prefix: (!has_backbone_keys).then(|| "backbone.".to_string()),
        skip_mismatched: true,
    };
    let (model, report) = load_state_dict(model, &sd, &options)?;
    if let Some(m) = report
        .mismatched
        .iter()
        .find(|m| m.key.starts_with("backbone."))
    {
        return Err(CheckpointError::ShapeMismatch {
            path: path.to_path_buf(),
            key: m.key.clone(),
            expected: m.expected.clone(),
            found: m.found.clone(),
        });
    }
    Ok((model, report))
}
