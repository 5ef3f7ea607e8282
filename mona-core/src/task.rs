//! The model extension point: each task crate registers its top-level models (by
//! `model.type`) with the functions that train and test them. `tools/train` and `tools/test`
//! look the model up and call these; they never name a task crate.

use std::path::PathBuf;

use burn::tensor::Device;

use crate::checkpoint::CheckpointError;
use crate::config::{Config, ConfigError};
use crate::infer::{InferArgs, InferReport};
use crate::registry::{BuildError, RegistryError};
use crate::runner::{Metrics, Resume, TrainError};

/// What `train` was asked to do.
#[derive(Debug, Clone)]
pub struct TrainArgs {
    pub work_dir: PathBuf,
    pub resume: Resume,
    /// Pretrained weights (overrides the config's `load_from`).
    pub load_from: Option<PathBuf>,
    pub seed: u64,
    /// The training device (an autodiff device is made from it).
    pub device: Device,
    /// Stop after this many iterations of this process (tests of resume).
    pub stop_after: Option<usize>,
    /// Skip the evaluations during training (the final one still runs).
    pub no_validate: bool,
    /// Data-parallel replicas besides `device` (`train --gpus N --all-reduce K`).
    pub parallel: crate::runner::DataParallel,
    /// Accept a `load_from` file that applies no tensor, or leaves frozen backbone
    /// parameters at their initialisation (`train --partial-load`).
    pub partial_load: bool,
    /// The processes of a distributed run (`train --launcher mpi`): this one is a rank.
    pub process: Option<crate::dist::SharedGroup>,
}

impl TrainArgs {
    /// A fresh run on `device` into `work_dir`: no resume, no pretrained weights, seed 0,
    /// validation on, one device.
    pub fn new(work_dir: impl Into<PathBuf>, device: Device) -> Self {
        Self {
            work_dir: work_dir.into(),
            resume: Resume::No,
            load_from: None,
            seed: 0,
            device,
            stop_after: None,
            no_validate: false,
            parallel: crate::runner::DataParallel::default(),
            partial_load: false,
            process: None,
        }
    }

    /// The devices that train together: the processes of a distributed run, else this
    /// process's replicas (`--gpus N`). The training loader pads its epochs for them.
    pub fn devices(&self) -> usize {
        self.process
            .as_ref()
            .map_or(self.parallel.world_size(), |g| g.world())
    }
}

/// What `test` was asked to do.
#[derive(Debug, Clone)]
pub struct TestArgs {
    /// A training checkpoint, an adapter file, or a state dict.
    pub checkpoint: PathBuf,
    /// Pretrained backbone weights to put under an adapter file (defaults to `load_from`).
    pub load_from: Option<PathBuf>,
    /// Metric names to report (task default when empty).
    pub metrics: Vec<String>,
    /// Write per-sample predictions here (JSON).
    pub out: Option<PathBuf>,
    /// Write visualisations here.
    pub show_dir: Option<PathBuf>,
    /// Detection: the lowest score a drawn box has (mmdet's `--show-score-thr`, 0.3).
    pub show_score_thr: f32,
    /// Only write the predictions (`out`), compute no metrics (mmdet `--format-only`);
    /// tasks without a results format ignore it.
    pub format_only: bool,
    /// mmdet's `--eval-options KEY=VALUE`: options of the evaluation (detection's
    /// `classwise`), over the config's `evaluation` keys of the same name. A task refuses
    /// keys it does not read.
    pub eval_options: std::collections::BTreeMap<String, String>,
    /// `--aug-test`: test-time augmentation (segmentation: mmseg's ratios with flip;
    /// detection: the test scales with flip; classification refuses it).
    pub aug_test: bool,
    pub device: Device,
    /// The processes of a sharded evaluation (`test --launcher mpi`): each predicts its share
    /// of the test set, and every rank gets the whole set's metrics.
    pub process: Option<crate::dist::SharedGroup>,
}

/// Errors of a task run; messages name the file, key or path involved.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error("{0}")]
    Data(String),
    /// A task's own typed error (evaluation, batching).
    #[error("{0}")]
    Task(crate::runner::BoxError),
    /// An output (`--out`) that could not be written.
    #[error("{path}: cannot write: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// The functions of one registered top-level model.
#[derive(Clone, Copy)]
pub struct TaskFns {
    /// Trains per the config; returns the final evaluation metrics.
    pub train: fn(&Config, &TrainArgs) -> Result<Metrics, TaskError>,
    /// Evaluates a checkpoint on the config's test set.
    pub test: fn(&Config, &TestArgs) -> Result<Metrics, TaskError>,
    /// The model's parts after its backbone (necks, heads), for `count-params`. Parameters
    /// are created lazily, so building the model for this draws no random numbers.
    pub parts: fn(&Config) -> Result<Vec<ModelPart>, TaskError>,
    /// Predicts each image with the config's test pipeline and writes a drawing and a JSON
    /// record per image to `out_dir`; an image that fails is reported and the rest go on.
    pub infer: fn(&Config, &InferArgs, &[PathBuf]) -> Result<InferReport, TaskError>,
}

/// A part of a model after its backbone (a neck, a head): its state-dict prefix and its
/// parameters. Every parameter of such a part trains, except BN running statistics.
#[derive(Debug, Clone)]
pub struct ModelPart {
    /// `neck`, `decode_head`, `roi_head`, ...: the key prefix of its parameters.
    pub name: String,
    /// Its parameters, keys without the prefix.
    pub params: Vec<crate::params::ParamInfo>,
}

impl ModelPart {
    /// The part `name` of a model.
    pub fn of<M: burn::module::Module>(name: &str, module: &M) -> Self {
        Self {
            name: name.to_string(),
            params: crate::params::param_infos(module),
        }
    }
}

crate::declare_registry! {
    /// Top-level models (`ImageClassifier`, `EncoderDecoder`, `RetinaNet`, ...), selected by
    /// `model.type`, with their train and test entry points.
    pub struct ModelEntry: "model" => TaskFns;
}

/// A `--device` (or `--gpus`) that this build cannot run on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("--device {0}: bad GPU index")]
    BadIndex(String),
    #[error("--device {0}: expected cuda:N")]
    NotCudaN(String),
    #[error("--device {0}: expected flex, cpu, cuda:N or cubecl-cpu")]
    Unknown(String),
    #[error("--device {0}: this build has no CUDA backend (build tools with --features cuda)")]
    NoCuda(String),
    #[error(
        "--device cubecl-cpu: this build has no cubecl CPU backend (build tools with --features cubecl-cpu)"
    )]
    NoCubeclCpu,
    #[error("--all-reduce nccl needs CUDA devices; --device is {0} (use --all-reduce host)")]
    NcclWithoutCuda(String),
}

/// Parses `flex`, `cpu`, `cuda:N` / `cuda` (with the `cuda` feature) or `cubecl-cpu` (burn's
/// cubecl backend on the CPU, with the `cubecl-cpu` feature).
pub fn parse_device(name: &str) -> Result<Device, DeviceError> {
    match name {
        "flex" | "cpu" => Ok(Device::flex()),
        "cubecl-cpu" => cubecl_cpu_device().ok_or(DeviceError::NoCubeclCpu),
        other => {
            if let Some(rest) = other.strip_prefix("cuda") {
                let index: usize = match rest.strip_prefix(':') {
                    Some(i) => i
                        .parse()
                        .map_err(|_| DeviceError::BadIndex(other.to_string()))?,
                    None if rest.is_empty() => 0,
                    None => return Err(DeviceError::NotCudaN(other.to_string())),
                };
                cuda_device(index).ok_or_else(|| DeviceError::NoCuda(other.to_string()))
            } else {
                Err(DeviceError::Unknown(other.to_string()))
            }
        }
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Option<Device> {
    Some(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Option<Device> {
    None
}

#[cfg(feature = "cubecl-cpu")]
fn cubecl_cpu_device() -> Option<Device> {
    Some(Device::cpu())
}

#[cfg(not(feature = "cubecl-cpu"))]
fn cubecl_cpu_device() -> Option<Device> {
    None
}

#[cfg(test)]
mod tests {
    use super::parse_device;

    #[test]
    fn device_names_parse_or_say_what_is_expected() {
        assert!(parse_device("flex").is_ok());
        assert!(parse_device("cpu").is_ok());
        assert_eq!(
            parse_device("cuda:x").unwrap_err().to_string(),
            "--device cuda:x: bad GPU index"
        );
        assert_eq!(
            parse_device("cudax").unwrap_err().to_string(),
            "--device cudax: expected cuda:N"
        );
        assert_eq!(
            parse_device("tpu").unwrap_err().to_string(),
            "--device tpu: expected flex, cpu, cuda:N or cubecl-cpu"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_cpu_build_names_the_missing_cuda_feature() {
        assert_eq!(
            parse_device("cuda:0").unwrap_err().to_string(),
            "--device cuda:0: this build has no CUDA backend (build tools with --features cuda)"
        );
    }

    #[cfg(not(feature = "cubecl-cpu"))]
    #[test]
    fn a_default_build_names_the_missing_cubecl_cpu_feature() {
        assert_eq!(
            parse_device("cubecl-cpu").unwrap_err().to_string(),
            "--device cubecl-cpu: this build has no cubecl CPU backend (build tools with --features cubecl-cpu)"
        );
    }
}
