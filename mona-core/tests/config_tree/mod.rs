//! A scratch tree of config files and readers of config values, shared by the config tests.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::path::{Path, PathBuf};

use mona_core::config::{Config, ConfigError};
use toml::Value;

/// A scratch folder of config files.
pub struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Self {
        Tree {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// Writes `text` to `relative` and returns the full path.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn load(&self, relative: &str) -> Config {
        let path = self.path(relative);
        Config::from_file(&path).unwrap_or_else(|e| panic!("loading {}: {e}", path.display()))
    }

    pub fn error(&self, relative: &str) -> ConfigError {
        match Config::from_file(self.path(relative)) {
            Ok(_) => panic!("{relative} loaded but should not"),
            Err(e) => e,
        }
    }
}

pub fn show(path: &Path) -> String {
    path.display().to_string()
}

pub fn int(cfg: &Config, key: &str) -> i64 {
    cfg.get(key)
        .unwrap_or_else(|| panic!("missing {key}"))
        .value()
        .as_integer()
        .unwrap_or_else(|| panic!("{key} is not an integer"))
}

pub fn string<'a>(cfg: &'a Config, key: &str) -> &'a str {
    cfg.get(key)
        .unwrap_or_else(|| panic!("missing {key}"))
        .value()
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

pub fn toml_value(text: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {text}")).unwrap()["v"].clone()
}

/// The mmlab-style tree used by most tests.
pub fn mmlab_tree() -> Tree {
    let tree = Tree::new();
    tree.write(
        "_base_/models/cascade_swin.toml",
        r#"
[model]
type = "CascadeRCNN"
pretrained = "swin_base.pth"

[model.backbone]
type = "SwinTransformer"
embed_dim = 96
depths = [2, 2, 6, 2]
num_heads = [3, 6, 12, 24]
window_size = 7

[model.neck]
type = "FPN"
in_channels = [96, 192, 384, 768]
out_channels = 256
"#,
    );
    tree.write(
        "_base_/datasets/coco.toml",
        r#"
[data]
samples_per_gpu = 2
workers_per_gpu = 2

[data.train]
type = "CocoDataset"
ann_file = "annotations/instances_train2017.json"

[[data.train.pipeline]]
type = "LoadImageFromFile"

[[data.train.pipeline]]
type = "Resize"
img_scale = [1333, 800]
keep_ratio = true

[[data.train.pipeline]]
type = "RandomFlip"
flip_ratio = 0.5
"#,
    );
    tree.write(
        "_base_/schedules/schedule_1x.toml",
        r#"
[optimizer]
type = "SGD"
lr = 0.02
momentum = 0.9
weight_decay = 0.0001

[lr_config]
policy = "step"
step = [8, 11]
"#,
    );
    tree.write(
        "_base_/default_runtime.toml",
        r#"
log_level = "INFO"
load_from = "none"
workflow = [["train", 1]]
"#,
    );
    tree.write(
        "mona/swin-b_coco/cascade_mona.toml",
        r#"
_base_ = [
    "../../_base_/models/cascade_swin.toml",
    "../../_base_/datasets/coco.toml",
    "../../_base_/schedules/schedule_1x.toml",
    "../../_base_/default_runtime.toml",
]

[model.backbone]
type = "SwinTransformer_mona"
embed_dim = 128
depths = [2, 2, 18, 2]

[optimizer]
_delete_ = true
type = "AdamW"
lr = 0.0001
betas = [0.9, 0.999]

[lr_config]
step = [27, 33]
"#,
    );
    tree
}

pub const TOP: &str = "mona/swin-b_coco/cascade_mona.toml";

// ----------------------------------------------------------------- merging
