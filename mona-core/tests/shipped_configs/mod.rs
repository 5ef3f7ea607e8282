//! Reading the shipped configs (`configs/`) and their values, shared by the config-port tests.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::{Path, PathBuf};

use mona_core::config::Config;
use serde::de::DeserializeOwned;
use toml::Value;

/// The nine methods of the comparison; `mona` first.
pub const METHODS: [&str; 9] = [
    "mona",
    "full",
    "fixed",
    "bitfit",
    "norm_tuning",
    "partial_1",
    "adapter",
    "adaptformer",
    "lora",
];

/// The tasks: folder under `configs/` and file stem (the file is `{stem}_{method}.toml`).
/// VOC detection and VOC classification share the `swin-l_voc` folder.
pub const TASKS: [(&str, &str); 6] = [
    ("mona/swin-b_coco", "cascade_mask_swin_base_3x_coco"),
    ("mona/swin-l_voc", "voc_retinanet_swin_large_1x"),
    ("mona/swin-l_ade20k", "ade20k_upernet_swin_large_160k"),
    ("mona/swin-l_oxford-flower", "swin-large_4xb8_oxford_flower"),
    ("mona/swin-l_oxford-pet", "swin-large_4xb8_oxford_pet"),
    ("mona/swin-l_voc", "swin-large_4xb8_voc"),
];

pub fn configs_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs"))
}

pub fn task_path(folder: &str, stem: &str, method: &str) -> PathBuf {
    configs_dir()
        .join(folder)
        .join(format!("{stem}_{method}.toml"))
}

/// Every `*.toml` below `dir`, sorted.
pub fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading folder {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

pub fn load_path(path: &Path) -> Config {
    Config::from_file(path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
}

pub fn load_task(folder: &str, stem: &str, method: &str) -> Config {
    load_path(&task_path(folder, stem, method))
}

pub fn name(cfg: &Config) -> String {
    cfg.path()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| cfg.path().display().to_string())
}

pub fn get<T: DeserializeOwned>(cfg: &Config, key: &str) -> T {
    cfg.extract::<T>(key)
        .unwrap_or_else(|e| panic!("{}: extracting `{key}`: {e}", name(cfg)))
}

pub fn value<'a>(cfg: &'a Config, key: &str) -> &'a Value {
    cfg.get(key)
        .unwrap_or_else(|| panic!("{}: missing `{key}`", name(cfg)))
        .value()
}

pub fn string(cfg: &Config, key: &str) -> String {
    get::<String>(cfg, key)
}

pub fn float(cfg: &Config, key: &str) -> f64 {
    get::<f64>(cfg, key)
}

pub fn int(cfg: &Config, key: &str) -> i64 {
    get::<i64>(cfg, key)
}

pub fn absent(cfg: &Config, key: &str) {
    assert!(
        cfg.get(key).is_none(),
        "{}: `{key}` should be absent, found {:?}",
        name(cfg),
        cfg.get(key).map(|n| n.value().clone())
    );
}

/// Relative comparison: the configs write decimal literals for values that Python computes
/// (e.g. `0.00006 * 5.0`), so allow a few ulps.
pub fn assert_close(cfg: &Config, key: &str, expected: f64) {
    let found = float(cfg, key);
    assert!(
        (found - expected).abs() <= 1e-12 * expected.abs().max(1e-300),
        "{}: `{key}` = {found}, expected {expected}",
        name(cfg)
    );
}

pub fn assert_floats(cfg: &Config, key: &str, expected: &[f64]) {
    let found: Vec<f64> = get(cfg, key);
    assert_eq!(
        found.len(),
        expected.len(),
        "{}: `{key}` = {found:?}",
        name(cfg)
    );
    for (f, e) in found.iter().zip(expected) {
        assert!(
            (f - e).abs() <= 1e-12,
            "{}: `{key}` = {found:?}, expected {expected:?}",
            name(cfg)
        );
    }
}

pub fn assert_ints(cfg: &Config, key: &str, expected: &[i64]) {
    assert_eq!(
        get::<Vec<i64>>(cfg, key),
        expected,
        "{}: `{key}`",
        name(cfg)
    );
}

pub fn assert_str(cfg: &Config, key: &str, expected: &str) {
    assert_eq!(string(cfg, key), expected, "{}: `{key}`", name(cfg));
}

/// The sorted keys of the table at `key`.
pub fn table_keys(cfg: &Config, key: &str) -> Vec<String> {
    let table = value(cfg, key)
        .as_table()
        .unwrap_or_else(|| panic!("{}: `{key}` is not a table", name(cfg)));
    let mut keys: Vec<String> = table.keys().cloned().collect();
    keys.sort();
    keys
}

/// Removes the value at a dotted path of table keys (no list indices) from `table`.
pub fn remove(table: &mut toml::Table, dotted: &str) {
    let segments: Vec<&str> = dotted.split('.').collect();
    let (last, parents) = segments.split_last().expect("non-empty key");
    let mut current = table;
    for segment in parents {
        match current.get_mut(*segment) {
            Some(Value::Table(child)) => current = child,
            _ => return,
        }
    }
    current.remove(*last);
}

/// The keys each method table holds (`type` plus the method's own arguments).
pub fn method_keys(method: &str) -> Vec<&'static str> {
    let mut keys = match method {
        "mona" | "adapter" => vec!["type", "bottleneck", "dropout"],
        "adaptformer" => vec!["type", "bottleneck", "dropout", "scale"],
        "lora" => vec!["type", "r", "alpha", "dropout", "enable_lora"],
        _ => vec!["type"],
    };
    keys.sort_unstable();
    keys
}

// ---------------------------------------------------------------------------------------------
// Every file
