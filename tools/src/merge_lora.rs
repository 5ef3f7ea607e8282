//! `convert-checkpoint --merge-lora`: a LoRA-tuned checkpoint as a plain one, with every
//! low-rank update folded into the `attn.qkv.weight` it adapts (loralib's merge,
//! `W + B·A · alpha/r` on the enabled thirds). The result loads into the same model with
//! method `full` or `fixed` and computes the same outputs up to float rounding, with no
//! LoRA code and no extra matrix products at inference.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use burn::tensor::{Device, TensorData};
use mona_core::backbone::build_backbone;
use mona_core::checkpoint::{
    LoadOptions, StateDict, adapter_file, load_state_dict, write_safetensors,
};
use mona_core::config::Config;
use mona_core::params::param_data;

use crate::ToolError;
use crate::convert::{Conversion, SOURCE_KEY};

/// Where a whole model's checkpoint keeps its backbone.
const BACKBONE_PREFIX: &str = "backbone.";

/// What a merge read and wrote.
#[derive(Debug, Clone)]
pub struct LoraMerge {
    pub conversion: Conversion,
    /// The `attn.qkv` weights that received their update.
    pub merged: usize,
    /// The pretrained backbone put under an adapter file, if the input was one.
    pub pretrained: Option<PathBuf>,
}

/// Merges the LoRA updates of `input` (a training checkpoint, a state dict, or an adapter
/// file on top of `pretrained`) and writes the result to `output`. `config` must describe the
/// LoRA model that produced `input`; its backbone is at `backbone_key`.
///
/// Keys outside the backbone (neck, heads) are copied as they are. The backbone's parameters
/// are written under their official keys, without `lora_A` / `lora_B`; a backbone parameter
/// that neither the file nor the pretrained weights hold is an error, since the output
/// would otherwise carry an initialisation as if it were trained.
pub fn merge_lora(
    input: &Path,
    output: &Path,
    config: &Config,
    backbone_key: &str,
    pretrained: Option<&Path>,
) -> Result<LoraMerge, ToolError> {
    let merge_error = |message: String| ToolError::MergeLora {
        path: input.to_path_buf(),
        message,
    };
    let sd = StateDict::read(input)?;
    let backbone = build_backbone(&config.node(backbone_key)?, &Device::flex())?;
    let method = backbone.method().name().to_string();
    if method != "lora" {
        return Err(merge_error(format!(
            "{}: {backbone_key}.method is `{method}`, not `lora`: give the config the checkpoint was trained with",
            config.path().display()
        )));
    }
    if !sd.tensors.keys().any(|k| k.ends_with(".lora_A")) {
        return Err(merge_error(
            "holds no `lora_A` tensor: not a LoRA checkpoint, nothing to merge".into(),
        ));
    }
    let is_adapter = sd
        .metadata
        .get(adapter_file::FORMAT_KEY)
        .map(String::as_str)
        == Some(adapter_file::FORMAT);
    let pretrained = match (is_adapter, pretrained) {
        (false, _) => None,
        (true, Some(path)) => Some(path.to_path_buf()),
        (true, None) => {
            return Err(merge_error(
                "is an adapter file (the trainable parameters only): give the pretrained backbone with --load-from, or a config with load_from".into(),
            ));
        }
    };
    let options = LoadOptions {
        strip_prefix: Some(BACKBONE_PREFIX.into()),
        ..LoadOptions::default()
    };
    let mut backbone = backbone;
    let mut applied = BTreeSet::new();
    if let Some(path) = &pretrained {
        let (loaded, report) = load_state_dict(backbone, &StateDict::read(path)?, &options)?;
        backbone = loaded;
        applied.extend(report.applied);
    }
    let (backbone, report) = load_state_dict(backbone, &sd, &options)?;
    applied.extend(report.applied);
    let missing: Vec<String> = param_data(&backbone, &|k| !applied.contains(k))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        return Err(merge_error(format!(
            "{} backbone parameter(s) are in neither the file nor the pretrained weights (`{}`{}); nothing written",
            missing.len(),
            missing[0],
            if missing.len() > 1 { ", …" } else { "" }
        )));
    }

    let backbone = backbone.merge_lora();
    let is_lora = |k: &str| k.ends_with(".lora_A") || k.ends_with(".lora_B");
    let merged = sd.tensors.keys().filter(|k| k.ends_with(".lora_A")).count();
    // A whole model's file keeps its backbone under `backbone.`; a bare backbone file does not.
    let prefixed = sd.tensors.keys().any(|k| k.starts_with(BACKBONE_PREFIX));
    let prefix = if prefixed { BACKBONE_PREFIX } else { "" };
    let mut tensors: Vec<(String, TensorData)> = param_data(&backbone, &|k| !is_lora(k))
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .collect();
    if prefixed {
        tensors.extend(
            sd.tensors
                .iter()
                .filter(|(k, _)| !k.starts_with(BACKBONE_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    let mut metadata = HashMap::from([
        (SOURCE_KEY.to_string(), input.display().to_string()),
        ("config".to_string(), config.path().display().to_string()),
        ("merged_lora".to_string(), merged.to_string()),
    ]);
    if let Some(path) = &pretrained {
        metadata.insert("pretrained".into(), path.display().to_string());
    }
    write_safetensors(output, &tensors, metadata)?;
    Ok(LoraMerge {
        conversion: Conversion {
            top_level_key: sd.top_level_key,
            read: sd.tensors.len(),
            non_float: sd.non_float,
            written: tensors.len(),
            report: None,
        },
        merged,
        pretrained,
    })
}
