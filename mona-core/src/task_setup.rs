//! What every task's `train` / `test` entry point does the same way: resolve `load_from`,
//! build the optimizer, LR schedule and runner options from the config, and load what `test`
//! was given (a training checkpoint, an adapter file, or a state dict).

use std::path::{Path, PathBuf};

use burn::module::Module;

use crate::checkpoint::{LoadOptions, StateDict, adapter_file, load_pretrained, load_state_dict};
use crate::config::Config;
use crate::params::{param_data, set_trainable};
use crate::registry::Registration;
use crate::runner::{LrSchedule, Optimizer, Resume, RunnerCfg, TrainModel, TrainOptions};
use crate::task::{TaskError, TestArgs, TrainArgs};

/// `explicit` (`--load-from`) or the config's non-empty `load_from`.
pub fn load_from(cfg: &Config, explicit: Option<&Path>) -> Result<Option<PathBuf>, TaskError> {
    if let Some(p) = explicit {
        return Ok(Some(p.to_path_buf()));
    }
    Ok(cfg
        .get("load_from")
        .map(|n| n.extract::<String>())
        .transpose()?
        .filter(|s| !s.is_empty())
        .map(Into::into))
}

/// Where a run resumes: `explicit` (`--resume`) when given, else the config's `resume_from`
/// (a checkpoint path; an empty string, TOML's stand-in for mmcv's `None`, means none), else
/// `auto_resume = true` (the newest checkpoint of the work dir), as mmdet's train script
/// reads them: the command line wins over the config.
pub fn resume(cfg: &Config, explicit: &Resume) -> Result<Resume, TaskError> {
    if *explicit != Resume::No {
        return Ok(explicit.clone());
    }
    if let Some(path) = cfg
        .get("resume_from")
        .map(|n| n.extract::<String>())
        .transpose()?
        && !path.is_empty()
    {
        tracing::info!("resuming from {path} (the config's resume_from)");
        return Ok(Resume::From(path.into()));
    }
    let auto = cfg
        .get("auto_resume")
        .map(|n| n.extract::<bool>())
        .transpose()?;
    if auto == Some(true) {
        tracing::info!("resuming from the work dir's newest checkpoint (the config's auto_resume)");
        return Ok(Resume::Auto);
    }
    Ok(Resume::No)
}

/// `data.samples_per_gpu`: the batch per device, at least 1.
pub fn samples_per_gpu(cfg: &Config) -> Result<usize, TaskError> {
    let node = cfg.node("data.samples_per_gpu")?;
    let n: usize = node.extract()?;
    if n == 0 {
        return Err(crate::registry::BuildError::invalid(
            &node,
            None,
            "0 images per batch: it must be at least 1",
        )
        .into());
    }
    Ok(n)
}

/// `data.workers_per_gpu` (default 2).
pub fn workers(cfg: &Config) -> Result<usize, TaskError> {
    Ok(cfg
        .get("data.workers_per_gpu")
        .map(|n| n.extract::<usize>())
        .transpose()?
        .unwrap_or(2))
}

/// Readies a freshly built `model` for training: loads `load_from` (`--load-from` or the
/// config; a missing file is an error), marks the parameters its rule trains, and draws every
/// lazily initialised value now, right after seeding, in declaration order. Returns the model
/// and a copy that answers `trainable` for the optimizer.
pub fn prepare_for_training<M: TrainModel>(
    cfg: &Config,
    args: &TrainArgs,
    mut model: M,
) -> Result<(M, M), TaskError> {
    if let Some(path) = load_from(cfg, args.load_from.as_deref())? {
        if !path.exists() {
            return Err(TaskError::Other(format!(
                "load_from {}: no such file (pass --load-from or set load_from = \"\")",
                path.display()
            )));
        }
        let (loaded, report) = load_pretrained(model, &path)?;
        tracing::info!("load_from {}: {report}", path.display());
        if !args.partial_load {
            check_complete_load(&path, &report, &|k| loaded.trainable(k))?;
        }
        model = loaded;
    }
    let rules = model.clone();
    let model = set_trainable(model, &|k| rules.trainable(k));
    let _ = param_data(&model, &|_| true);
    Ok((model, rules))
}

/// The metric names of `evaluation.metric` (a name or a list), `default` when it is absent.
pub fn evaluation_metrics(cfg: &Config, default: &str) -> Result<Vec<String>, TaskError> {
    let Some(node) = cfg.get("evaluation.metric") else {
        return Ok(vec![default.to_string()]);
    };
    if node.value().is_array() {
        Ok(node.extract::<Vec<String>>()?)
    } else {
        Ok(vec![node.extract::<String>()?])
    }
}

/// Refuses `--eval-options` keys the task's evaluation does not read (`known`), before any
/// work: mmdet passes them to `dataset.evaluate(**kwargs)`, which fails on an unexpected one.
pub fn check_eval_options(
    task: &str,
    options: &std::collections::BTreeMap<String, String>,
    known: &[&str],
) -> Result<(), TaskError> {
    match options.keys().find(|k| !known.contains(&k.as_str())) {
        Some(bad) => Err(TaskError::Other(format!(
            "--eval-options {bad}: {task} evaluation takes {}",
            if known.is_empty() {
                "no options".to_string()
            } else {
                known.join(", ")
            }
        ))),
        None => Ok(()),
    }
}

/// A boolean evaluation option: `--eval-options KEY=true|false` (mmcv's `DictAction` also
/// reads Python's `True` / `False`) wins over the config's `evaluation.KEY`, as mmdet's test
/// script merges them; `false` when neither sets it.
pub fn eval_flag(
    cfg: &Config,
    options: &std::collections::BTreeMap<String, String>,
    key: &str,
) -> Result<bool, TaskError> {
    if let Some(value) = options.get(key) {
        return match value.as_str() {
            "true" | "True" => Ok(true),
            "false" | "False" => Ok(false),
            other => Err(TaskError::Other(format!(
                "--eval-options {key}={other}: expected true or false"
            ))),
        };
    }
    Ok(cfg
        .get(&format!("evaluation.{key}"))
        .map(|node| node.extract::<bool>())
        .transpose()?
        .unwrap_or(false))
}

/// Refuses metric names that the task's metric registry `R` lacks (`test --metrics`,
/// `evaluation.metric`, named by `source`), before any work: a misspelt name would otherwise
/// report nothing and exit 0.
pub fn check_metric_names<R: Registration + inventory::Collect>(
    source: &str,
    task: &str,
    asked: &[String],
) -> Result<(), TaskError> {
    let supported = crate::registry::names::<R>();
    match asked.iter().find(|m| !supported.contains(&m.as_str())) {
        Some(bad) => Err(TaskError::Other(format!(
            "{source}: metric \"{bad}\" is not supported for {task}{} (supported: {})",
            crate::registry::suggestion_text(&crate::registry::closest(bad, &supported)),
            supported.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Refuses a `load_from` that applied nothing, or that leaves a frozen backbone parameter
/// at its initialisation: such a parameter never trains, so the run would silently tune on
/// top of random weights. Missing trainable parameters (a tuning method's own modules, a new
/// head) are expected: they start from their initialisation as in mmcv.
fn check_complete_load(
    path: &std::path::Path,
    report: &crate::checkpoint::KeyReport,
    trainable: &dyn Fn(&str) -> bool,
) -> Result<(), TaskError> {
    let hint = "pass --partial-load to train with what applies";
    if report.applied.is_empty() {
        let unused: Vec<&str> = report.unused.iter().take(2).map(String::as_str).collect();
        let missing: Vec<&str> = report.missing.iter().take(2).map(String::as_str).collect();
        return Err(TaskError::Other(format!(
            "load_from {}: no tensor of the file names a parameter of the model (unused: `{}`; the model has `{}`); {hint}",
            path.display(),
            unused.join("`, `"),
            missing.join("`, `"),
        )));
    }
    let frozen: Vec<&str> = report
        .missing
        .iter()
        .filter(|k| k.starts_with("backbone.") && !trainable(k))
        .map(String::as_str)
        .collect();
    if let Some(first) = frozen.first() {
        return Err(TaskError::Other(format!(
            "load_from {}: {} frozen backbone parameter(s) are not in the file and would stay at their random initialisation (first: `{first}`); {hint}",
            path.display(),
            frozen.len(),
        )));
    }
    Ok(())
}

/// The optimizer (for the parameters `trainable` accepts), the LR schedule and the runner
/// options of a training run of `model`, whose backbone method is `method`.
pub fn train_setup<M: Module>(
    cfg: &Config,
    args: &TrainArgs,
    model: &M,
    trainable: &dyn Fn(&str) -> bool,
    method: &str,
) -> Result<(Optimizer, LrSchedule, TrainOptions), TaskError> {
    let mut optimizer = Optimizer::from_config(&cfg.node("optimizer")?, model, trainable)?;
    // the global batch: every thread replica and every process trains one batch
    let devices = args.parallel.world_size() * args.process.as_ref().map_or(1, |g| g.world());
    if let Some(factor) = auto_scale_lr(cfg, devices)? {
        tracing::info!("auto_scale_lr: learning rates scaled by {factor}");
        optimizer.scale_lr(factor);
    }
    let schedule = match cfg.get("lr_config") {
        Some(n) => LrSchedule::from_config(&n)?,
        None => LrSchedule::constant(),
    };
    let mut runner = RunnerCfg::from_config(cfg)?;
    if args.no_validate {
        runner.eval_interval = 0;
    }
    let opts = TrainOptions {
        work_dir: args.work_dir.clone(),
        seed: args.seed,
        resume: resume(cfg, &args.resume)?,
        runner,
        config_toml: cfg.to_toml_string(),
        method: method.to_string(),
        stop_after: args.stop_after,
        export_adapter: true,
        parallel: args.parallel.clone(),
        process: args.process.clone(),
        classes: Vec::new(),
    };
    Ok((optimizer, schedule, opts))
}

/// mmdet's `auto_scale_lr = {enable = true, base_batch_size = B}`: the lr factor
/// `devices × data.samples_per_gpu / B`; `None` when absent or not enabled.
pub fn auto_scale_lr(cfg: &Config, devices: usize) -> Result<Option<f64>, TaskError> {
    let Some(node) = cfg.get("auto_scale_lr") else {
        return Ok(None);
    };
    let enabled = match node.get("enable") {
        Some(e) => e.extract::<bool>()?,
        None => false,
    };
    if !enabled {
        return Ok(None);
    }
    let base: f64 = node.child("base_batch_size")?.extract()?;
    let per_device = samples_per_gpu(cfg)? as f64;
    if base <= 0.0 {
        return Err(TaskError::Config(crate::config::ConfigError::Invalid {
            file: node.file().to_path_buf(),
            key: "auto_scale_lr.base_batch_size".into(),
            message: format!("must be positive, got {base}"),
        }));
    }
    Ok(Some(devices as f64 * per_device / base))
}

/// Loads what `test` was given into `model`: a training checkpoint, an adapter file on top
/// of the pretrained weights (`load_from`), or a plain state dict. `method` names the
/// model's backbone method (adapter files record it).
pub fn load_for_test<M: Module>(
    cfg: &Config,
    model: M,
    args: &TestArgs,
    method: &str,
) -> Result<M, TaskError> {
    let sd = StateDict::read(&args.checkpoint)?;
    let meta = |k: &str| sd.metadata.get(k).map(String::as_str);
    if meta(adapter_file::FORMAT_KEY) == Some(adapter_file::FORMAT) {
        let mut model = model;
        match load_from(cfg, args.load_from.as_deref())? {
            Some(path) => {
                let (loaded, report) = load_pretrained(model, &path)?;
                tracing::info!("pretrained {}: {report}", path.display());
                model = loaded;
            }
            None => tracing::warn!(
                "adapter file without pretrained weights (no load_from): the frozen backbone keeps its initialisation"
            ),
        }
        Ok(adapter_file::load_adapter(model, &args.checkpoint, method)?.0)
    } else if sd.is_training_checkpoint() {
        let ckpt = crate::runner::read_checkpoint(&args.checkpoint)?;
        let options = LoadOptions {
            strict: true,
            ..Default::default()
        };
        Ok(load_state_dict(model, &ckpt.model, &options)?.0)
    } else {
        let (model, report) = load_pretrained(model, &args.checkpoint)?;
        tracing::info!("{}: {report}", args.checkpoint.display());
        Ok(model)
    }
}

/// The training precision: `--amp` on the command line, else the config's `amp.dtype`
/// (`"fp32"` or `"bf16"`), else bf16 autocast for an mmcv `fp16` section or the Swin
/// fork's `optimizer_config.use_fp16 = true` (apex mixed precision in its `DistOptimizerHook`):
/// the official configs ask for float16 to save memory and time, and bf16 autocast serves the
/// same purpose and needs no loss scale. Else float32. A `use_fp16` that is not a boolean is
/// an error naming the key.
pub fn training_precision(
    cfg: &Config,
    cli_amp: bool,
) -> Result<crate::nn::amp::Precision, TaskError> {
    use crate::nn::amp::Precision;
    if cli_amp {
        return Ok(Precision::Bf16);
    }
    if let Some(node) = cfg.get("amp.dtype") {
        let name: String = node.extract()?;
        return name.parse::<Precision>().map_err(|message| {
            TaskError::Config(crate::config::ConfigError::Invalid {
                file: node.file().to_path_buf(),
                key: "amp.dtype".into(),
                message,
            })
        });
    }
    if cfg.get("fp16").is_some() {
        tracing::info!(
            "{}: `fp16` (mmcv loss-scaled float16) runs as bf16 autocast with float32 master weights",
            cfg.path().display()
        );
        return Ok(Precision::Bf16);
    }
    if let Some(node) = cfg.get("optimizer_config.use_fp16") {
        let on: bool = node.extract()?;
        if on {
            tracing::info!(
                "{}: `optimizer_config.use_fp16 = true` (apex float16) runs as bf16 autocast with float32 master weights",
                node.file().display()
            );
            return Ok(Precision::Bf16);
        }
    }
    Ok(Precision::Fp32)
}
