//! Keys no component reads: a misspelt top-level table (`[optimzer]`) or schedule key
//! (`runner.max_epoch`) would otherwise be ignored in silence and the run would use the
//! defaults. The known keys are those of mmcv 1.x configs, read by this project or carried
//! by the official configs as plain variables (`img_norm_cfg`, `train_pipeline`, ...). The
//! parts built by name (`model`, `data`, `optimizer`) check their own keys when built.

use super::Config;
use super::ConfigNode;

/// A key of the config that nothing reads.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownKey {
    /// The dotted key.
    pub key: String,
    /// The file (or `--cfg-options`) that set it.
    pub file: String,
    /// The closest known key, if one is close.
    pub nearest: Option<&'static str>,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: `{}` is not a key any component reads",
            self.file, self.key
        )?;
        if let Some(n) = self.nearest {
            write!(f, " (did you mean `{n}`?)")?;
        }
        Ok(())
    }
}

/// Top-level keys of mmcv 1.x configs.
const TOP_LEVEL: &[&str] = &[
    "model",
    "data",
    "optimizer",
    "optimizer_config",
    "lr_config",
    "momentum_config",
    "runner",
    "total_epochs",
    "checkpoint_config",
    "log_config",
    "evaluation",
    "work_dir",
    "load_from",
    "resume_from",
    "auto_resume",
    "amp",
    "fp16",
    "auto_scale_lr",
    "seed",
    "deterministic",
    "gpu_ids",
    "device",
    "dist_params",
    "log_level",
    "workflow",
    "cudnn_benchmark",
    "custom_hooks",
    "custom_imports",
    "opencv_num_threads",
    "mp_start_method",
    "find_unused_parameters",
    // plain variables of the official configs, used to build the tables above
    "dataset_type",
    "data_root",
    "img_norm_cfg",
    "train_pipeline",
    "test_pipeline",
    "norm_cfg",
    "crop_size",
    "img_scale",
    "bs_per_gpu",
    "gpu_num",
    "root",
    "paramwise_cfg",
    "pretrained",
    "checkpoint_file",
];

/// The keys of the runner's tables (mmcv 1.x hooks and runners).
const TABLES: &[(&str, &[&str])] = &[
    (
        "runner",
        &["type", "max_epochs", "max_iters", "batch_shards"],
    ),
    (
        "checkpoint_config",
        &[
            "type",
            "interval",
            "by_epoch",
            "max_keep_ckpts",
            "save_optimizer",
            "save_last",
            "out_dir",
            "create_symlink",
        ],
    ),
    (
        "evaluation",
        &[
            "type",
            "interval",
            "metric",
            "by_epoch",
            "start",
            "save_best",
            "rule",
            "gpu_collect",
            "tmpdir",
            "metric_options",
            "efficient_test",
            "pre_eval",
            "classwise",
            "iou_thrs",
            "proposal_nums",
        ],
    ),
    ("log_config", &["interval", "hooks", "by_epoch"]),
    (
        "optimizer_config",
        &[
            "type",
            "grad_clip",
            "cumulative_iters",
            "use_fp16",
            "loss_scale",
            "coalesce",
            "bucket_size_mb",
            "update_interval",
            "detect_anomalous_params",
        ],
    ),
    (
        "lr_config",
        &[
            "_delete_",
            "policy",
            "by_epoch",
            "warmup",
            "warmup_iters",
            "warmup_ratio",
            "warmup_by_epoch",
            "step",
            "gamma",
            "min_lr",
            "min_lr_ratio",
            "power",
            "periods",
            "restart_weights",
            "max_lr",
            "pct_start",
            "anneal_strategy",
            "div_factor",
            "final_div_factor",
            "three_phase",
        ],
    ),
];

/// Every top-level key, and every key of the runner's tables, that is not a known one.
pub fn unknown_keys(config: &Config) -> Vec<UnknownKey> {
    let mut found = Vec::new();
    let root = config.root();
    let check = |node: ConfigNode<'_>, known: &[&'static str], found: &mut Vec<UnknownKey>| {
        let toml::Value::Table(table) = node.value() else {
            return;
        };
        for name in table.keys() {
            if known.contains(&name.as_str()) {
                continue;
            }
            let child = node.get(name);
            found.push(UnknownKey {
                key: child
                    .as_ref()
                    .map_or_else(|| name.clone(), |c| c.key().to_string()),
                file: child
                    .as_ref()
                    .map_or_else(|| node.file(), |c| c.file())
                    .display()
                    .to_string(),
                nearest: crate::registry::closest(name, known).first().copied(),
            });
        }
    };
    check(root, TOP_LEVEL, &mut found);
    for (table, keys) in TABLES {
        if let Some(node) = config.get(table) {
            check(node, keys, &mut found);
        }
    }
    found
}
