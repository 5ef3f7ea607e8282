//! `train CONFIG [--work-dir DIR] [--resume [CKPT]] [--load-from CKPT] [--seed N] [--deterministic]
//! [--device flex|cuda:N|cubecl-cpu] [--cfg-options K=V ...]`: trains the model of a config.
//!
//! The work dir receives the merged `config.toml`, `train.log`, `log.jsonl`, checkpoints
//! (`epoch_N.safetensors` / `iter_N.safetensors`, `last_checkpoint`) and the final
//! `adapter_final.safetensors`. The final metrics are printed on stdout, one per line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use mona_core::dist::{DistError, Launcher, SharedGroup, is_primary};
use mona_core::registry::lookup;
use mona_core::reproducibility::Reproducibility;
use mona_core::runner::{AllReduce, DataParallel, Resume, replica_devices};
use mona_core::task::{ModelEntry, TrainArgs, parse_device};

/// Train a model (classification, segmentation or detection) from a config.
#[derive(Parser, Debug)]
#[command(name = "train", version)]
struct Args {
    /// The config file.
    config: PathBuf,
    /// Where logs and checkpoints go (default: the config's `work_dir`, else
    /// `work_dirs/<config name>`).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Resume from a training checkpoint; without a path, from the newest one of the work dir.
    /// (A `String`: clap's path parser refuses the empty value that marks a bare `--resume`.)
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "CKPT")]
    resume: Option<String>,
    /// Pretrained weights (Swin release `.pth`, mmdet/mmseg/mmcls `.pth`, safetensors);
    /// overrides the config's `load_from`.
    #[arg(long)]
    load_from: Option<PathBuf>,
    /// Train even when `load_from` applies no tensor or leaves frozen backbone parameters
    /// at their initialisation (an error otherwise).
    #[arg(long)]
    partial_load: bool,
    /// Random seed (initialisation, data order, augmentation, dropout); default: the
    /// config's `seed`, else 0.
    #[arg(long)]
    seed: Option<u64>,
    /// Require a bit-reproducible run (also the config's `deterministic = true`): accepted on
    /// flex, where every run of a seed is; refused on cubecl devices, whose kernels are
    /// chosen by timing.
    #[arg(long)]
    deterministic: bool,
    /// `flex` (CPU), `cuda:N` (a `cuda` build) or `cubecl-cpu` (a `cubecl-cpu` build).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Skip evaluation during training (the final evaluation still runs).
    #[arg(long)]
    no_validate: bool,
    /// Config keys that nothing reads (typos) are an error, not a warning.
    #[arg(long)]
    strict: bool,
    /// Overrides in mmcv style: `a.b.c=value`, `list.0.type=X`, `key=None` removes a key.
    #[arg(long = "cfg-options", value_name = "KEY=VALUE", num_args = 1..)]
    cfg_options: Vec<String>,
    /// Data-parallel training on N devices: `cuda:K .. cuda:K+N-1` for `--device cuda:K`,
    /// each with the config's per-GPU batch (`data.samples_per_gpu`).
    #[arg(long, default_value_t = 1)]
    gpus: usize,
    /// How `--gpus` replicas average their gradients: `nccl` (device to device; the
    /// default on CUDA) or `host` (through host memory; works everywhere, bit-identical
    /// replicas).
    #[arg(long)]
    all_reduce: Option<AllReduce>,
    /// Mixed precision: matrix products and convolutions in bf16, float32 master weights,
    /// norms and losses (also set by the config's `amp.dtype = "bf16"` or an mmcv `fp16`).
    #[arg(long)]
    amp: bool,
    /// How the processes of the run were started: `none` (this process alone; `--gpus N`
    /// threads) or `mpi` (`mpirun -np N` or Slurm's `srun --mpi=pmix`: one device per
    /// process, `cuda:LOCAL_RANK` or the CPU; a build with `--features mpi`).
    #[arg(long, default_value = "none")]
    launcher: Launcher,
    /// Stop after this many iterations, as if killed (for testing resume).
    #[arg(long, hide = true)]
    stop_after: Option<usize>,
}

/// The binary's `main`: parses the command line and runs it.
pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::cli::run(|| -> anyhow::Result<()> {
        if args.gpus == 0 {
            anyhow::bail!("--gpus 0: training needs at least one device (the default is 1)");
        }
        let config = crate::config_args::load_config(&args.config, &args.cfg_options)?;
        crate::config_args::check_keys(&config, args.strict)?;
        if args.launcher == Launcher::Mpi && args.gpus > 1 {
            return Err(DistError::ThreadsAndProcesses(args.gpus).into());
        }
        let process = crate::launcher::process_group(args.launcher, &config)?;
        crate::launcher::run_as_rank(process.as_ref(), || {
            train_here(&args, &config, process.clone())
        })
    })
}

/// Trains this process's part: all of it, or rank `process.rank()`'s (rank 0 alone holds the
/// work dir's lock and writes into it).
fn train_here(
    args: &Args,
    config: &mona_core::config::Config,
    process: Option<SharedGroup>,
) -> anyhow::Result<()> {
    let primary = is_primary(process.as_ref());
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => match config.get("work_dir") {
            Some(node) => PathBuf::from(node.extract::<String>()?),
            None => PathBuf::from("work_dirs").join(
                args.config
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "run".into()),
            ),
        },
    };
    // Held until training ends, before anything is written into the work dir.
    let _lock = if primary {
        std::fs::create_dir_all(&work_dir)
            .with_context(|| format!("work dir {}: cannot create", work_dir.display()))?;
        let lock = crate::work_dir_lock::WorkDirLock::acquire(&work_dir)?;
        let dumped = work_dir.join("config.toml");
        mona_core::checkpoint::write_atomic_text(&dumped, &config.to_toml_string()).with_context(
            || format!("work dir {}: cannot write config.toml", work_dir.display()),
        )?;
        Some(lock)
    } else {
        None
    };
    let entry = lookup::<ModelEntry>(&config.node("model")?)?;
    let device_name = crate::launcher::device_name(&args.device, process.as_ref());
    let repro = Reproducibility::resolve(config, args.seed, args.deterministic, &device_name)?;
    let device = parse_device(&device_name)?;
    let resume = match &args.resume {
        None => Resume::No,
        Some(p) if p.is_empty() => Resume::Auto,
        Some(p) => Resume::From(PathBuf::from(p)),
    };
    tracing::info!(
        "training {} ({}) in {}",
        args.config.display(),
        entry.name,
        work_dir.display()
    );
    // mmdet's line
    tracing::info!(
        "Set random seed to {}, deterministic: {}",
        repro.seed,
        repro.deterministic
    );
    let precision = mona_core::task_setup::training_precision(config, args.amp)?;
    mona_core::nn::amp::set_precision(precision);
    tracing::info!("precision: {precision:?}");
    let replicas = replica_devices(&device, &args.device, args.gpus)?;
    let parallel = DataParallel {
        replicas,
        all_reduce: args
            .all_reduce
            .unwrap_or_else(|| AllReduce::default_for(&args.device)),
    };
    if args.gpus > 1 {
        parallel.check(&args.device)?;
        tracing::info!(
            "data-parallel training on {} devices ({:?} all-reduce)",
            args.gpus,
            parallel.all_reduce
        );
    }
    let train_args = TrainArgs {
        work_dir: work_dir.clone(),
        resume,
        load_from: args.load_from.clone(),
        seed: repro.seed,
        device,
        stop_after: args.stop_after,
        no_validate: args.no_validate,
        parallel,
        partial_load: args.partial_load,
        process: process.clone(),
    };
    let metrics = (entry.build.train)(config, &train_args)?;
    if primary {
        for (name, value) in &metrics {
            println!("{name}: {value:.2}");
        }
    }
    Ok(())
}
