use std::collections::{BTreeSet, HashMap};

use burn::module::Module;
use burn::tensor::TensorData;

use super::bicubic::resize_bias_table;
use super::{CheckpointError, StateDict};
use crate::params::{load_params, param_infos};

/// How to map a checkpoint onto a module.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Fail unless every module parameter is loaded and every checkpoint key is used.
    pub strict: bool,
    /// When the checkpoint has keys under this prefix (e.g. `backbone.` in an mmdet file
    /// loaded into a bare backbone), use only those, with the prefix removed.
    pub strip_prefix: Option<String>,
    /// Prepended to every checkpoint key (e.g. `backbone.` when a Swin release file is loaded
    /// into a whole detector).
    pub add_prefix: Option<String>,
    /// Skip tensors whose shape differs (listed in [`KeyReport::mismatched`]) instead of
    /// failing, as mmcv's `load_checkpoint(strict=False)` does for a classification head of
    /// another class count. Relative position bias tables are still resized.
    pub skip_mismatched: bool,
}

/// What a load did, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyReport {
    /// Keys written into the model.
    pub applied: Vec<String>,
    /// Model parameters the checkpoint lacks (they keep their initial values).
    pub missing: Vec<String>,
    /// Checkpoint keys that name no model parameter.
    pub unused: Vec<String>,
    /// Buffers the model recomputes instead of loading (`relative_position_index`, `attn_mask`).
    pub recomputed: Vec<String>,
    /// Relative position bias tables resized bicubically to the model's window.
    pub resized: Vec<String>,
    /// Tensors skipped for a shape mismatch (only with `skip_mismatched`).
    pub mismatched: Vec<crate::params::ShapeMismatch>,
}

impl std::fmt::Display for KeyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "applied {} | missing {} | unused {} | recomputed buffers {} | resized {} | shape mismatches skipped {}",
            self.applied.len(),
            self.missing.len(),
            self.unused.len(),
            self.recomputed.len(),
            self.resized.len(),
            self.mismatched.len()
        )?;
        for m in &self.mismatched {
            writeln!(
                f,
                "skipped {}: checkpoint {:?}, model {:?}",
                m.key, m.found, m.expected
            )?;
        }
        for (label, keys) in [
            ("missing", &self.missing),
            ("unused", &self.unused),
            ("resized", &self.resized),
        ] {
            if !keys.is_empty() {
                writeln!(f, "{label}: {}", summarize(keys))?;
            }
        }
        Ok(())
    }
}

/// Collapses per-block keys (`layers.0.blocks.1.my_module_1.gamma`) into patterns with counts.
fn summarize(keys: &[String]) -> String {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for k in keys {
        let pattern: String = k
            .split('.')
            .map(|p| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    "*"
                } else {
                    p
                }
            })
            .collect::<Vec<_>>()
            .join(".");
        match groups.iter_mut().find(|(p, _)| *p == pattern) {
            Some((_, n)) => *n += 1,
            None => groups.push((pattern, 1)),
        }
    }
    groups
        .into_iter()
        .map(|(p, n)| if n > 1 { format!("{p} (x{n})") } else { p })
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_recomputed_buffer(key: &str) -> bool {
    key.ends_with("relative_position_index") || key.ends_with("attn_mask")
}

/// Loads `sd` into `module` by official key. A shape mismatch is an error naming the key and
/// both shapes (the first mismatching parameter in the model's order), except for relative
/// position bias tables of another window, which are resized.
pub fn load_state_dict<M: Module>(
    module: M,
    sd: &StateDict,
    options: &LoadOptions,
) -> Result<(M, KeyReport), CheckpointError> {
    let mut report = KeyReport::default();
    let mut source: Vec<(String, TensorData)> = match &options.strip_prefix {
        Some(prefix) if sd.tensors.keys().any(|k| k.starts_with(prefix.as_str())) => {
            for k in sd
                .tensors
                .keys()
                .filter(|k| !k.starts_with(prefix.as_str()))
            {
                report.unused.push(k.clone());
            }
            sd.with_prefix_stripped(prefix).into_iter().collect()
        }
        _ => sd.tensors.clone().into_iter().collect(),
    };
    if let Some(prefix) = &options.add_prefix {
        source = source
            .into_iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v))
            .collect();
    }
    for k in &sd.non_float {
        if is_recomputed_buffer(k) {
            report.recomputed.push(k.clone());
        } else {
            report.unused.push(k.clone());
        }
    }
    let infos = param_infos(&module);
    // Visit the checkpoint in the model's parameter order, so that a shape mismatch names the
    // first parameter of the model that differs (`patch_embed.proj.weight` for another
    // embedding width), not whichever key sorts first.
    let position: HashMap<&str, usize> = infos
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key.as_str(), i))
        .collect();
    source.sort_by_key(|(k, _)| position.get(k.as_str()).copied().unwrap_or(usize::MAX));
    let expected: HashMap<String, Vec<usize>> = infos
        .iter()
        .map(|p| (p.key.clone(), p.shape.clone()))
        .collect();
    let mut tensors = HashMap::new();
    for (key, data) in source {
        if is_recomputed_buffer(&key) {
            report.recomputed.push(key);
            continue;
        }
        let Some(shape) = expected.get(&key) else {
            report.unused.push(key);
            continue;
        };
        let found = data.shape().to_vec();
        let data = if &found != shape
            && key.ends_with("relative_position_bias_table")
            && found.len() == 2
            && shape.len() == 2
            && found[1] == shape[1]
        {
            let values: Vec<f32> = data
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap_or_default();
            match resize_bias_table(&values, found[0], found[1], shape[0]) {
                Some(v) => {
                    report.resized.push(key.clone());
                    TensorData::new(v, shape.clone())
                }
                None => TensorData::new(values, found),
            }
        } else {
            data
        };
        if data.shape().to_vec() != *shape && options.skip_mismatched {
            report.mismatched.push(crate::params::ShapeMismatch {
                key,
                expected: shape.clone(),
                found: data.shape().to_vec(),
            });
            continue;
        }
        if data.shape().to_vec() != *shape {
            return Err(CheckpointError::ShapeMismatch {
                path: sd.path.clone(),
                key,
                expected: shape.clone(),
                found: data.shape().to_vec(),
            });
        }
        tensors.insert(key, data);
    }
    let (module, outcome) = load_params(module, &tensors);
    report.applied = outcome.applied;
    report.missing = outcome.missing;
    let mut unused: BTreeSet<String> = report.unused.drain(..).collect();
    report.unused = std::mem::take(&mut unused).into_iter().collect();
    report.recomputed.sort();
    if options.strict && (!report.missing.is_empty() || !report.unused.is_empty()) {
        return Err(CheckpointError::Strict {
            path: sd.path.clone(),
            missing: report.missing.len(),
            unused: report.unused.len(),
            first: report.missing.iter().take(5).cloned().collect(),
            first_unused: report.unused.iter().take(5).cloned().collect(),
        });
    }
    Ok((module, report))
}
