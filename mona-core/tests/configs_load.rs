//! The shipped configs (`configs/`, the TOML port of the official Mona configs):
//!
//! * every `*.toml` file loads on its own (bases resolve, no sibling-base key clashes, no
//!   dict-over-non-dict merges);
//! * each of the six tasks has the Mona config and the eight baselines;
//! * each baseline differs from its Mona config only in the method table and the
//!   hyper-parameters the official baseline configs change.
//!
//! The values each task's config resolves to are checked in `configs_values.rs`.

mod shipped_configs;

use mona_core::config::Config;
use shipped_configs::*;

#[test]
fn every_config_file_loads() {
    let files = toml_files(&configs_dir());
    assert!(
        files.len() >= 6 * 9,
        "expected at least 54 config files under {}, found {}",
        configs_dir().display(),
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        match Config::from_file(path) {
            Ok(cfg) => {
                for reserved in ["_base_", "_delete_"] {
                    if cfg.table().contains_key(reserved) {
                        failures.push(format!(
                            "{}: `{reserved}` left in the merged config",
                            path.display()
                        ));
                    }
                }
            }
            Err(e) => failures.push(format!("{}: {e}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "configs that do not load:\n{}",
        failures.join("\n")
    );
}

#[test]
fn each_task_folder_has_the_nine_methods() {
    for (folder, stem) in TASKS {
        for method in METHODS {
            let path = task_path(folder, stem, method);
            assert!(path.is_file(), "missing {}", path.display());
        }
        // Nothing else with the task's stem (e.g. a stray `_LN` copy).
        let prefix = format!("{stem}_");
        let mut found: Vec<String> = std::fs::read_dir(configs_dir().join(folder))
            .unwrap_or_else(|e| panic!("reading {folder}: {e}"))
            .map(|entry| {
                entry
                    .expect("folder entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .filter(|file| file.starts_with(&prefix) && file.ends_with(".toml"))
            .collect();
        found.sort();
        let mut expected: Vec<String> = METHODS
            .iter()
            .map(|method| format!("{stem}_{method}.toml"))
            .collect();
        expected.sort();
        assert_eq!(found, expected, "files of task {folder}/{stem}");
    }
}

// ---------------------------------------------------------------------------------------------
// Methods and baselines

#[test]
fn every_task_config_has_the_method_of_its_suffix() {
    for (folder, stem) in TASKS {
        for method in METHODS {
            let cfg = load_task(folder, stem, method);
            assert_str(&cfg, "model.backbone.type", "SwinTransformer");
            assert_str(&cfg, "model.backbone.method.type", method);
            let keys = table_keys(&cfg, "model.backbone.method");
            assert_eq!(keys, method_keys(method), "{}: method keys", name(&cfg));
            match method {
                "mona" | "adapter" => {
                    assert_eq!(int(&cfg, "model.backbone.method.bottleneck"), 64);
                    assert_close(&cfg, "model.backbone.method.dropout", 0.1);
                }
                "adaptformer" => {
                    assert_eq!(int(&cfg, "model.backbone.method.bottleneck"), 64);
                    assert_close(&cfg, "model.backbone.method.dropout", 0.1);
                    assert_close(&cfg, "model.backbone.method.scale", 0.1);
                }
                "lora" => {
                    assert_eq!(int(&cfg, "model.backbone.method.r"), 64);
                    assert_close(&cfg, "model.backbone.method.alpha", 1.0);
                    assert_eq!(float(&cfg, "model.backbone.method.dropout"), 0.0);
                    assert_eq!(
                        get::<Vec<bool>>(&cfg, "model.backbone.method.enable_lora"),
                        [true, false, true]
                    );
                }
                _ => absent(&cfg, "model.backbone.method.bottleneck"),
            }
        }
    }
}

/// The keys (besides `model.backbone.method`) each task's baselines may change relative to
/// the Mona config.
fn baseline_overrides(stem: &str) -> &'static [&'static str] {
    match stem {
        // ADE20K: drop_path 0.3, lr 6e-5 without the `backbone` custom key, BN heads in some.
        "ade20k_upernet_swin_large_160k" => &[
            "model.backbone.drop_path_rate",
            "optimizer",
            "norm_cfg",
            "model.decode_head.norm_cfg",
            "model.auxiliary_head.norm_cfg",
        ],
        // Flowers / Pets: the baselines use half of Mona's lr.
        "swin-large_4xb8_oxford_flower" | "swin-large_4xb8_oxford_pet" => &["optimizer.lr"],
        // COCO, VOC detection, VOC classification: only the method.
        _ => &[],
    }
}

#[test]
fn baselines_differ_from_mona_only_where_the_official_baselines_do() {
    for (folder, stem) in TASKS {
        let mona = load_task(folder, stem, "mona");
        let mut mona_rest = mona.table().clone();
        remove(&mut mona_rest, "model.backbone.method");
        for key in baseline_overrides(stem) {
            remove(&mut mona_rest, key);
        }
        for method in &METHODS[1..] {
            let cfg = load_task(folder, stem, method);
            let mut rest = cfg.table().clone();
            remove(&mut rest, "model.backbone.method");
            for key in baseline_overrides(stem) {
                remove(&mut rest, key);
            }
            assert!(
                rest == mona_rest,
                "{}: differs from the Mona config outside the method and {:?}",
                name(&cfg),
                baseline_overrides(stem)
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// COCO
