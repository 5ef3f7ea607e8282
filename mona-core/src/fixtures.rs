//! Reading golden fixtures (`NAME.json` + `NAME.safetensors`, see the fixtures README) and
//! comparing tensors by their relative error. Shared by the parity tests of every crate.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;

use crate::checkpoint::{CheckpointError, StateDict};

/// `$MONA_FIXTURES` when set, else `../shared/fixtures` relative to the workspace root.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("MONA_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
    }
}

/// The device parity tests run on: `$MONA_TEST_DEVICE` (`flex`, `cuda:N` in a build with the
/// `cuda` feature), default `flex`, always with autodiff. It lets the same fixture test binary
/// check a GPU against the PyTorch fixtures.
pub fn test_device() -> burn::tensor::Device {
    let name = std::env::var("MONA_TEST_DEVICE").unwrap_or_else(|_| "flex".to_string());
    crate::task::parse_device(&name)
        .unwrap_or_else(|e| panic!("MONA_TEST_DEVICE: {e}"))
        .autodiff()
}

/// One fixture case: its JSON description and its tensors.
pub struct Fixture {
    pub name: String,
    pub json: serde_json::Value,
    pub tensors: BTreeMap<String, TensorData>,
}

impl Fixture {
    pub fn kind(&self) -> &str {
        self.json.get("kind").and_then(|k| k.as_str()).unwrap_or("")
    }

    /// The tensor `key`; panics with the fixture name when absent (a broken fixture).
    pub fn tensor(&self, key: &str) -> &TensorData {
        self.tensors
            .get(key)
            .unwrap_or_else(|| panic!("fixture {}: no tensor `{key}`", self.name))
    }

    /// The tensor `key` as f32 values; empty when absent.
    pub fn floats(&self, key: &str) -> Vec<f32> {
        self.tensors
            .get(key)
            .and_then(|t| t.clone().convert::<f32>().try_into_vec().ok())
            .unwrap_or_default()
    }

    /// Tensors under `prefix`, with the prefix removed.
    pub fn with_prefix(&self, prefix: &str) -> BTreeMap<String, TensorData> {
        self.tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(prefix).map(|s| (s.to_string(), v.clone())))
            .collect()
    }
}

/// Every `*.json` in `dir` with its tensors, sorted by name.
pub fn list_fixtures(dir: &Path) -> Result<Vec<Fixture>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let st = path.with_extension("safetensors");
        let tensors = if st.exists() {
            StateDict::read(&st)
                .map_err(|e: CheckpointError| e.to_string())?
                .tensors
        } else {
            BTreeMap::new()
        };
        out.push(Fixture {
            name,
            json,
            tensors,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `max |a − b| / max |b|` (the fixtures README's measure); `inf` on a shape mismatch.
pub fn rel_err(actual: &TensorData, expected: &TensorData) -> f64 {
    if actual.shape() != expected.shape() {
        return f64::INFINITY;
    }
    let a: Vec<f32> = actual
        .clone()
        .convert::<f32>()
        .try_into_vec()
        .unwrap_or_default();
    let b: Vec<f32> = expected
        .clone()
        .convert::<f32>()
        .try_into_vec()
        .unwrap_or_default();
    let max_abs = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
    let max_diff = a
        .iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    if max_abs == 0.0 {
        max_diff
    } else {
        max_diff / max_abs
    }
}

/// The end of a fixture's report line: `  [notes]` when there are notes, then each problem
/// on its own indented line.
pub fn report_tail(notes: &[String], problems: &[String]) -> String {
    let mut tail = String::new();
    if !notes.is_empty() {
        tail.push_str(&format!("  [{}]", notes.join("; ")));
    }
    if !problems.is_empty() {
        tail.push_str(&format!("\n    {}", problems.join("\n    ")));
    }
    tail
}

/// Forward tolerance of the fixtures README.
pub const FORWARD_TOL: f64 = 1e-4;
/// Gradient tolerance of the fixtures README.
pub const GRAD_TOL: f64 = 1e-3;
