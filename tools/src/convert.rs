//! Checkpoint conversion: any readable checkpoint (`.pth` with a `state_dict` or `model` key,
//! a bare dict, safetensors) to a safetensors file, optionally through a backbone so that the
//! user sees which keys map (the way to start from a Microsoft Swin release).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use burn::tensor::{Device, TensorData};
use mona_core::backbone::build_backbone;
use mona_core::checkpoint::{
    KeyReport, LoadOptions, StateDict, load_state_dict, write_safetensors,
};
use mona_core::config::Config;
use mona_core::params::param_data;

use crate::ToolError;
use crate::keys::{KeyGroup, group_keys, thousands};

/// Metadata key naming the file a converted checkpoint came from.
pub const SOURCE_KEY: &str = "source";

/// How to convert through a backbone.
#[derive(Debug, Clone, Default)]
pub struct BackboneOptions {
    /// Fail unless every backbone parameter is loaded and every checkpoint key is used.
    pub strict: bool,
    /// Also write the parameters the checkpoint lacks, at their fresh initial values.
    pub include_missing: bool,
}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The top-level key of a `.pth` that held the weights (`model`, `state_dict`).
    pub top_level_key: Option<String>,
    /// Float tensors read.
    pub read: usize,
    /// Non-float entries of the input (integer buffers), which are not written.
    pub non_float: Vec<String>,
    /// Tensors written.
    pub written: usize,
    /// The key report of loading into the backbone, when converting through one.
    pub report: Option<KeyReport>,
}

/// Copies every float tensor of `input` to `output` (safetensors, written atomically).
pub fn convert_plain(input: &Path, output: &Path) -> Result<Conversion, ToolError> {
    let sd = StateDict::read(input)?;
    let tensors: Vec<(String, TensorData)> = sd.tensors.clone().into_iter().collect();
    let mut metadata: HashMap<String, String> = sd.metadata.clone().into_iter().collect();
    if sd.is_training_checkpoint() {
        // The output holds the model only: it is a plain state dict, not a checkpoint to
        // resume from, and must not claim the training format.
        metadata.remove("format");
        metadata.remove("meta");
    }
    metadata.insert(SOURCE_KEY.into(), input.display().to_string());
    write_safetensors(output, &tensors, metadata)?;
    Ok(Conversion {
        top_level_key: sd.top_level_key,
        read: sd.tensors.len(),
        non_float: sd.non_float,
        written: tensors.len(),
        report: None,
    })
}

/// Loads `input` into the backbone at `backbone_key` of `config` (a `backbone.` prefix is
/// stripped when present) and writes the backbone's state under its official keys: the
/// parameters loaded from the file (resized bias tables at the model's window), plus, with
/// [`BackboneOptions::include_missing`], the rest at their initial values.
pub fn convert_through_backbone(
    input: &Path,
    output: &Path,
    config: &Config,
    backbone_key: &str,
    options: &BackboneOptions,
) -> Result<Conversion, ToolError> {
    let sd = StateDict::read(input)?;
    let backbone = build_backbone(&config.node(backbone_key)?, &Device::flex())?;
    let load = LoadOptions {
        strict: options.strict,
        strip_prefix: Some("backbone.".into()),
        ..LoadOptions::default()
    };
    let (backbone, report) = load_state_dict(backbone, &sd, &load)?;
    if report.applied.is_empty() {
        let sample =
            |keys: &mut dyn Iterator<Item = String>| keys.take(2).collect::<Vec<_>>().join("`, `");
        return Err(ToolError::NothingApplied {
            input: input.to_path_buf(),
            config: config.path().to_path_buf(),
            file_keys: sample(&mut sd.tensors.keys().cloned()),
            model_keys: sample(&mut param_data(&backbone, &|_| true).into_iter().map(|(k, _)| k)),
        });
    }
    let applied: BTreeSet<&str> = report.applied.iter().map(String::as_str).collect();
    let tensors = param_data(&backbone, &|k| {
        options.include_missing || applied.contains(k)
    });
    let metadata = HashMap::from([
        (SOURCE_KEY.to_string(), input.display().to_string()),
        ("config".to_string(), config.path().display().to_string()),
        ("method".to_string(), backbone.method().name().to_string()),
    ]);
    write_safetensors(output, &tensors, metadata)?;
    Ok(Conversion {
        top_level_key: sd.top_level_key,
        read: sd.tensors.len(),
        non_float: sd.non_float,
        written: tensors.len(),
        report: Some(report),
    })
}

fn key_lines(title: &str, keys: &[String], out: &mut String) {
    if keys.is_empty() {
        return;
    }
    out.push_str(&format!("{title} ({}):\n", keys.len()));
    let groups: Vec<KeyGroup> = group_keys(keys.iter().map(|k| (k.as_str(), 0)));
    for g in groups {
        if g.tensors > 1 {
            out.push_str(&format!("  {} (x{})\n", g.pattern, g.tensors));
        } else {
            out.push_str(&format!("  {}\n", g.pattern));
        }
    }
}

/// The key report as text: one summary line, then each non-empty category's keys grouped.
pub fn format_report(report: &KeyReport) -> String {
    let mut out = format!(
        "keys: applied {} | missing {} | unused {} | recomputed {} | resized {} | skipped {}\n",
        report.applied.len(),
        report.missing.len(),
        report.unused.len(),
        report.recomputed.len(),
        report.resized.len(),
        report.mismatched.len()
    );
    key_lines("applied", &report.applied, &mut out);
    key_lines(
        "missing (not in the checkpoint; keep their initial values)",
        &report.missing,
        &mut out,
    );
    key_lines(
        "unused (no backbone parameter; not written)",
        &report.unused,
        &mut out,
    );
    key_lines(
        "recomputed buffers (not loaded)",
        &report.recomputed,
        &mut out,
    );
    key_lines(
        "resized relative position bias tables (bicubic)",
        &report.resized,
        &mut out,
    );
    for m in &report.mismatched {
        out.push_str(&format!(
            "skipped {}: checkpoint {:?}, model {:?}\n",
            m.key, m.found, m.expected
        ));
    }
    out
}

/// What the conversion read and wrote, as text.
pub fn format_conversion(input: &Path, output: &Path, conversion: &Conversion) -> String {
    let mut out = format!(
        "read {}{}: {} float tensors",
        input.display(),
        conversion
            .top_level_key
            .as_ref()
            .map(|k| format!(" (top-level key `{k}`)"))
            .unwrap_or_default(),
        thousands(conversion.read)
    );
    if !conversion.non_float.is_empty() {
        out.push_str(&format!(
            ", {} non-float entries (integer buffers, not written)",
            conversion.non_float.len()
        ));
    }
    out.push('\n');
    if let Some(report) = &conversion.report {
        out.push_str(&format_report(report));
    }
    out.push_str(&format!(
        "wrote {}: {} tensors\n",
        output.display(),
        thousands(conversion.written)
    ));
    out
}
