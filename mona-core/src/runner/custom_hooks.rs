//! `custom_hooks`: hooks a config names by `type`, from the `hook` registry, open to plugins.
//!
//! A custom hook sees each iteration's position, losses and any evaluation at it, and may add
//! records to the run's logs; it cannot change the model or the optimizer (those hooks are
//! the runner's own, in fixed order). It runs after the built-in hooks, in config order.
//! mmcv's `priority` key is accepted with a warning: the order is the config's.
//!
//! ```toml
//! custom_hooks = [{ type = "CheckInvalidLossHook", interval = 50 }, { type = "MemoryProfilerHook", interval = 50 }]
//! ```

use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, json};

use crate::config::Config;
use crate::registry::{BuildError, lookup};
use crate::runner::logger::{JsonLog, memory_mb};
use crate::runner::{BoxError, Metrics};

/// What a custom hook sees.
#[derive(Debug)]
pub struct HookView<'a> {
    /// Completed iterations, and the epoch they fall in (1-based while it runs).
    pub iter: usize,
    pub epoch: usize,
    pub max_iters: usize,
    /// The last iteration's total loss and its parts (0 and none at the end of a run that
    /// did not step).
    pub loss: f64,
    pub parts: &'a [(String, f64)],
    /// The metrics of an evaluation at this iteration.
    pub metrics: Option<&'a Metrics>,
    pub work_dir: &'a Path,
}

/// A hook a plugin (or this crate) registers under a name for `custom_hooks`.
pub trait CustomHook: Send {
    /// After every iteration; `log` appends to `log.jsonl` / `train.log`.
    fn after_iter(&mut self, view: &HookView<'_>, log: &mut JsonLog) -> Result<(), BoxError> {
        let _ = (view, log);
        Ok(())
    }

    /// Once at the end of the run.
    fn after_run(&mut self, view: &HookView<'_>, log: &mut JsonLog) -> Result<(), BoxError> {
        let _ = (view, log);
        Ok(())
    }
}

/// Builds a hook from its config table (`type` included).
pub type HookBuilder = fn(&toml::Value) -> Result<Box<dyn CustomHook>, BoxError>;

crate::declare_registry! {
    /// Hooks a config names in `custom_hooks`.
    pub struct HookEntry: "hook" => HookBuilder;
}

/// One `custom_hooks` entry, checked when the config is read and built when training starts.
#[derive(Debug, Clone)]
pub struct HookSpec {
    pub name: &'static str,
    build: HookBuilder,
    args: toml::Value,
}

impl PartialEq for HookSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.args == other.args
    }
}

impl HookSpec {
    pub fn build(&self) -> Result<Box<dyn CustomHook>, BoxError> {
        (self.build)(&self.args)
    }
}

/// The config's `custom_hooks`, each looked up by `type` and built once to check its keys
/// (errors name the file, the key and the nearest registered hooks).
pub fn hook_specs(cfg: &Config) -> Result<Vec<HookSpec>, BuildError> {
    let Some(list) = cfg.get("custom_hooks") else {
        return Ok(Vec::new());
    };
    let items = list.items();
    if items.is_empty() && !matches!(list.value(), toml::Value::Array(_)) {
        return Err(BuildError::invalid(
            &list,
            None,
            "expected a list of hook tables, e.g. [{ type = \"CheckInvalidLossHook\" }]",
        ));
    }
    items
        .iter()
        .map(|item| {
            let entry = lookup::<HookEntry>(item)?;
            let mut args = item.value().clone();
            if let toml::Value::Table(t) = &mut args
                && t.remove("priority").is_some()
            {
                tracing::warn!(
                    "{}: {}.priority: custom hooks run after the built-in ones in config order; the priority is not used",
                    item.file().display(),
                    item.key()
                );
            }
            let spec = HookSpec {
                name: entry.name,
                build: entry.build,
                args,
            };
            spec.build()
                .map_err(|e| BuildError::invalid(item, None, e.to_string()))?;
            Ok(spec)
        })
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(args: &toml::Value) -> Result<T, toml::de::Error> {
    args.clone().try_into()
}

fn default_interval() -> usize {
    50
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalArgs {
    #[serde(rename = "type")]
    _type: String,
    #[serde(default = "default_interval")]
    interval: usize,
}

/// A hook's `interval` of 0, which would never fire (and divide by zero).
#[derive(Debug, thiserror::Error)]
#[error("interval must be at least 1")]
struct ZeroInterval;

fn interval(args: &toml::Value) -> Result<usize, BoxError> {
    let a: IntervalArgs = parse(args)?;
    if a.interval == 0 {
        return Err(ZeroInterval.into());
    }
    Ok(a.interval)
}

/// mmdet's `NumClassCheckHook`: every task checks, before training and testing, that its
/// head predicts the dataset's classes, so this hook has nothing left to do; it is
/// registered so that the official configs, which name it, read as they are.
struct NumClassCheck;

impl CustomHook for NumClassCheck {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeOnly {
    #[serde(rename = "type")]
    _type: String,
}

fn build_num_class_check(args: &toml::Value) -> Result<Box<dyn CustomHook>, BoxError> {
    let _: TypeOnly = parse(args)?;
    Ok(Box::new(NumClassCheck))
}

/// mmdet's `CheckInvalidLossHook`: every `interval` iterations the loss and each of its parts
/// must be finite (the runner itself stops at a non-finite total at once).
struct CheckInvalidLoss {
    interval: usize,
}

impl CustomHook for CheckInvalidLoss {
    fn after_iter(&mut self, view: &HookView<'_>, _: &mut JsonLog) -> Result<(), BoxError> {
        if !view.iter.is_multiple_of(self.interval) {
            return Ok(());
        }
        match view.parts.iter().find(|(_, v)| !v.is_finite()) {
            Some((name, v)) => Err(InvalidLoss {
                iter: view.iter,
                name: name.clone(),
                value: *v,
            }
            .into()),
            None => Ok(()),
        }
    }
}

/// The loss part `CheckInvalidLossHook` found not finite.
#[derive(Debug, thiserror::Error)]
#[error("iteration {iter}: {name} is {value} (not finite); stopping")]
struct InvalidLoss {
    iter: usize,
    name: String,
    value: f64,
}

fn build_check_invalid_loss(args: &toml::Value) -> Result<Box<dyn CustomHook>, BoxError> {
    Ok(Box::new(CheckInvalidLoss {
        interval: interval(args)?,
    }))
}

/// mmdet's `MemoryProfilerHook`: every `interval` iterations, the machine's available and
/// used memory and this process's resident memory, as a `memory` record.
struct MemoryProfiler {
    interval: usize,
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo` in MB.
fn machine_memory_mb() -> Option<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

impl CustomHook for MemoryProfiler {
    fn after_iter(&mut self, view: &HookView<'_>, log: &mut JsonLog) -> Result<(), BoxError> {
        if !view.iter.is_multiple_of(self.interval) {
            return Ok(());
        }
        let rss = memory_mb();
        let mut rec = Map::new();
        rec.insert("mode".into(), json!("memory"));
        rec.insert("iter".into(), json!(view.iter));
        rec.insert("process_memory".into(), json!(rss.round()));
        let mut human = format!("Memory information: process memory: {rss:.0} MB");
        if let Some((total, available)) = machine_memory_mb() {
            let used = total - available;
            rec.insert("available_memory".into(), json!(available.round()));
            rec.insert("used_memory".into(), json!(used.round()));
            rec.insert("memory_utilization".into(), json!(100.0 * used / total));
            human.push_str(&format!(
                ", available_memory: {available:.0} MB, used_memory: {used:.0} MB, memory_utilization: {:.1} %",
                100.0 * used / total
            ));
        }
        Ok(log.record(rec, &human)?)
    }
}

fn build_memory_profiler(args: &toml::Value) -> Result<Box<dyn CustomHook>, BoxError> {
    Ok(Box::new(MemoryProfiler {
        interval: interval(args)?,
    }))
}

inventory::submit! { HookEntry::new("NumClassCheckHook", build_num_class_check) }
inventory::submit! { HookEntry::new("CheckInvalidLossHook", build_check_invalid_loss) }
inventory::submit! { HookEntry::new("MemoryProfilerHook", build_memory_profiler) }
