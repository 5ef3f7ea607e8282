//! `test CONFIG CHECKPOINT [--metrics ...] [--out FILE] [--show-dir DIR] [--load-from CKPT]
//! [--eval-options K=V ...] [--aug-test] [--device flex|cuda:N|cubecl-cpu] [--cfg-options K=V ...]`: evaluates a checkpoint on the config's
//! test set and prints the metrics, one per line.
//!
//! CHECKPOINT may be a training checkpoint, an adapter file (then the pretrained backbone
//! comes from `--load-from` or the config's `load_from`), or any `.pth`/safetensors state dict.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mona_core::dist::{Launcher, SharedGroup, is_primary};
use mona_core::registry::lookup;
use mona_core::task::{ModelEntry, TestArgs, parse_device};

/// Evaluate a trained model on the test split of its config.
#[derive(Parser, Debug)]
#[command(name = "test", version)]
struct Args {
    /// The config file.
    config: PathBuf,
    /// A training checkpoint, an adapter file or a state dict.
    checkpoint: PathBuf,
    /// Metrics to report (task default when omitted), e.g. `accuracy`, `mIoU`, `bbox`.
    #[arg(long, num_args = 1..)]
    metrics: Vec<String>,
    /// Write per-sample predictions and the metrics as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write visualisations of the predictions here.
    #[arg(long)]
    show_dir: Option<PathBuf>,
    /// Detection: draw the boxes scoring at least this (0 to 1; mmdet's default 0.3).
    #[arg(long, requires = "show_dir", default_value_t = mona_det::visualize::SHOW_SCORE_THR, value_parser = score_threshold)]
    show_score_thr: f32,
    /// Only write the predictions to `--out` (detection: a COCO-style results json), compute
    /// no metrics.
    #[arg(long)]
    format_only: bool,
    /// Options of the evaluation, mmdet style: `classwise=true` logs each category's COCO AP
    /// (detection). They win over the config's `evaluation` keys of the same name.
    #[arg(long = "eval-options", value_name = "KEY=VALUE", num_args = 1.., value_parser = key_value)]
    eval_options: Vec<(String, String)>,
    /// Test-time augmentation. Segmentation: mmseg's, the ratios 0.5 to 1.75 of the test
    /// scale, each also flipped (probabilities averaged). Detection: the test pipeline's
    /// scales, each also flipped (merged as mmdet's `aug_test`).
    #[arg(long)]
    aug_test: bool,
    /// `mpi` (under `mpirun` or Slurm, a `--features mpi` build): every process predicts its
    /// share of the test set, rank 0 gathers the predictions and reports the whole set's
    /// metrics.
    #[arg(long, default_value = "none")]
    launcher: Launcher,
    /// mmdet's flag for gathering a distributed test's results through the devices instead of
    /// a shared directory: accepted from mmdet's scripts; the results are always gathered
    /// through MPI in memory, and no directory is needed.
    #[arg(long)]
    gpu_collect: bool,
    /// Pretrained backbone under an adapter file (default: the config's `load_from`).
    #[arg(long)]
    load_from: Option<PathBuf>,
    /// `flex` (CPU), `cuda:N` (a `cuda` build) or `cubecl-cpu` (a `cubecl-cpu` build).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Config keys that nothing reads (typos) are an error, not a warning.
    #[arg(long)]
    strict: bool,
    /// Overrides in mmcv style: `a.b.c=value`.
    #[arg(long = "cfg-options", value_name = "KEY=VALUE", num_args = 1..)]
    cfg_options: Vec<String>,
}

/// `KEY=VALUE`.
fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// A score threshold: a number in [0, 1].
pub(crate) fn score_threshold(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("expected a score between 0 and 1, got `{s}`")),
    }
}

/// The binary's `main`: parses the command line and runs it.
pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::cli::run(|| -> anyhow::Result<()> {
        check_outputs(&args)?;
        let config = crate::config_args::load_config(&args.config, &args.cfg_options)?;
        crate::config_args::check_keys(&config, args.strict)?;
        if args.gpu_collect && args.launcher == Launcher::None {
            tracing::warn!("--gpu-collect: a test without --launcher mpi has nothing to gather");
        }
        let process = crate::launcher::process_group(args.launcher, &config)?;
        crate::launcher::run_as_rank(process.as_ref(), || {
            test_here(&args, &config, process.clone())
        })
    })
}

/// Tests this process's part: all of the test set, or rank `process.rank()`'s share (rank 0
/// alone prints and writes).
fn test_here(
    args: &Args,
    config: &mona_core::config::Config,
    process: Option<SharedGroup>,
) -> anyhow::Result<()> {
    let primary = is_primary(process.as_ref());
    let entry = lookup::<ModelEntry>(&config.node("model")?)?;
    let device_name = crate::launcher::device_name(&args.device, process.as_ref());
    let device = parse_device(&device_name)?;
    {
        let test_args = TestArgs {
            checkpoint: args.checkpoint.clone(),
            load_from: args.load_from.clone(),
            metrics: args.metrics.clone(),
            out: args.out.clone(),
            show_dir: args.show_dir.clone(),
            show_score_thr: args.show_score_thr,
            format_only: args.format_only,
            eval_options: args.eval_options.iter().cloned().collect(),
            aug_test: args.aug_test,
            device,
            process,
        };
        let metrics = (entry.build.test)(config, &test_args)?;
        if primary {
            for (name, value) in &metrics {
                println!("{name}: {value:.2}");
            }
        }
        Ok(())
    }
}

/// Checks `--out` and `--show-dir` before the model runs, so that a typo costs no
/// inference: `--format-only` needs `--out`, no output may be one of the inputs, and both
/// places must be writable (folders are created).
fn check_outputs(args: &Args) -> anyhow::Result<()> {
    use anyhow::{Context, bail};
    if args.format_only && args.out.is_none() {
        bail!("--format-only writes only the predictions: give --out FILE");
    }
    let inputs = [
        Some(&args.config),
        Some(&args.checkpoint),
        args.load_from.as_ref(),
    ];
    let probe = |dir: &std::path::Path, option: &str, path: &std::path::Path| {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "{option} {}: cannot create {}",
                path.display(),
                dir.display()
            )
        })?;
        let probe = dir.join(format!(".mona-write-probe-{}", std::process::id()));
        std::fs::write(&probe, b"").with_context(|| {
            format!(
                "{option} {}: cannot write in {}",
                path.display(),
                dir.display()
            )
        })?;
        let _ = std::fs::remove_file(&probe);
        anyhow::Ok(())
    };
    if let Some(out) = &args.out {
        if out.is_dir() {
            bail!("--out {}: is a folder; give a file name", out.display());
        }
        if let Some(input) = inputs
            .iter()
            .flatten()
            .find(|i| crate::paths::same_file(i, out))
        {
            bail!(
                "--out {}: is the input {}; refusing to write over it",
                out.display(),
                input.display()
            );
        }
        let dir = out
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        probe(dir, "--out", out)?;
    }
    if let Some(show) = &args.show_dir {
        if show.is_file() {
            bail!("--show-dir {}: is a file; give a folder", show.display());
        }
        probe(show, "--show-dir", show)?;
    }
    Ok(())
}
