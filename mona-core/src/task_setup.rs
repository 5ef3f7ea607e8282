//! What every task's `train` / `test` entry point does the same way: resolve `load_from`,
//! build the optimizer, LR schedule and runner options from the config, and load what `test`
//! was given (a training checkpoint, an adapter file, or a state dict).

use std::path::{Path, PathBuf};

use burn::module::Module;

use crate::checkpoint::{LoadOptions, StateDict, adapter_file, load_pretrained, load_state_dict};
use crate::config::Config;
use crate::runner::{LrSchedule, Optimizer, RunnerCfg, TrainOptions};
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

/// `data.workers_per_gpu` (default 2).
pub fn workers(cfg: &Config) -> Result<usize, TaskError> {
    Ok(cfg
        .get("data.workers_per_gpu")
        .map(|n| n.extract::<usize>())
        .transpose()?
        .unwrap_or(2))
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
    let optimizer = Optimizer::from_config(&cfg.node("optimizer")?, model, trainable)?;
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
        resume: args.resume.clone(),
        runner,
        config_toml: cfg.to_toml_string(),
        method: method.to_string(),
        stop_after: args.stop_after,
        export_adapter: true,
    };
    Ok((optimizer, schedule, opts))
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
    } else if meta("format").is_some_and(|f| f.starts_with("mona-checkpoint")) {
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
