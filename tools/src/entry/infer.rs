//! `infer CONFIG CHECKPOINT IMAGES... [--out-dir DIR] [--score-thr T] [--load-from CKPT]
//! [--device flex|cuda:N|cubecl-cpu] [--cfg-options K=V ...]`: runs a trained model on your
//! own images (files, folders or glob patterns) and writes, per image, a drawing and a JSON
//! record into `--out-dir`: detection boxes (and masks) as COCO-style records, a segmentation
//! label map with a colour overlay, or the top classes of a classifier.
//!
//! Preprocessing is the config's `data.test.pipeline`. An image that cannot be read or
//! predicted is reported with its file and the others are still processed; the exit status is
//! then 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use mona_core::infer::{InferArgs, InferFailure};
use mona_core::registry::lookup;
use mona_core::task::{ModelEntry, parse_device};

/// Run a trained model on your own images.
#[derive(Parser, Debug)]
#[command(name = "infer", version)]
struct Args {
    /// The config file.
    config: PathBuf,
    /// A training checkpoint, an adapter file or a state dict.
    checkpoint: PathBuf,
    /// Image files, folders (their images, not recursively) or glob patterns (`'dir/*.jpg'`).
    #[arg(required = true)]
    images: Vec<String>,
    /// Where the drawings and JSON records go (created if missing).
    #[arg(long, default_value = "infer_out")]
    out_dir: PathBuf,
    /// Detection: draw the boxes scoring at least this (0 to 1; mmdet's default 0.3). The
    /// JSON records keep every detection, as `test --out` does.
    #[arg(long, default_value_t = mona_det::visualize::SHOW_SCORE_THR, value_parser = super::test::score_threshold)]
    score_thr: f32,
    /// Pretrained backbone under an adapter file (default: the config's `load_from`).
    #[arg(long)]
    load_from: Option<PathBuf>,
    /// `flex` (CPU), `cuda:N` (a `cuda` build) or `cubecl-cpu` (a `cubecl-cpu` build).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Overrides in mmcv style: `a.b.c=value`.
    #[arg(long = "cfg-options", value_name = "KEY=VALUE", num_args = 1..)]
    cfg_options: Vec<String>,
}

/// File extensions taken from a folder (case-insensitive), those `image` decodes.
const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp", "gif"];

/// The images named by `inputs`, in order: a file as given, a folder's images sorted by name,
/// a glob pattern's matches sorted. An input that names nothing is a failure naming it.
pub fn expand_inputs(inputs: &[String]) -> (Vec<PathBuf>, Vec<InferFailure>) {
    let (mut images, mut failed) = (Vec::new(), Vec::new());
    let mut fail = |path: &Path, error: String| {
        failed.push(InferFailure {
            path: path.to_path_buf(),
            error,
        })
    };
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            match folder_images(path) {
                Ok(found) if found.is_empty() => fail(path, "the folder holds no image".into()),
                Ok(found) => images.extend(found),
                Err(e) => fail(path, format!("cannot read the folder: {e}")),
            }
        } else if path.exists() {
            images.push(path.to_path_buf());
        } else if input.contains(['*', '?', '[']) {
            match glob::glob(input) {
                Ok(matches) => {
                    let mut found: Vec<PathBuf> = matches.filter_map(Result::ok).collect();
                    found.sort();
                    if found.is_empty() {
                        fail(path, "the pattern matches no file".into());
                    }
                    images.extend(found);
                }
                Err(e) => fail(path, format!("not a valid pattern: {e}")),
            }
        } else {
            fail(path, "no such file or folder".into());
        }
    }
    (images, failed)
}

/// Outputs are named after their images (`<stem>.png`, ...): an out dir holding an input
/// image could have it overwritten, so it is refused.
fn check_out_dir(out_dir: &Path, images: &[PathBuf]) -> anyhow::Result<()> {
    let out = out_dir.canonicalize()?;
    let inside = images.iter().find(|image| {
        image
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .is_some_and(|parent| parent == out)
    });
    if let Some(image) = inside {
        bail!(
            "--out-dir {}: holds the input {}; its drawing would be written over it, choose another folder",
            out_dir.display(),
            image.display()
        );
    }
    Ok(())
}

fn folder_images(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_lowercase().as_str()));
        if path.is_file() && is_image {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

/// The binary's `main`: parses the command line and runs it.
pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::cli::run(|| -> anyhow::Result<()> {
        let config = crate::config_args::load_config(&args.config, &args.cfg_options)?;
        let entry = lookup::<ModelEntry>(&config.node("model")?)?;
        let device = parse_device(&args.device)?;
        let (images, mut failed) = expand_inputs(&args.images);
        for f in &failed {
            tracing::error!("{}: {}", f.path.display(), f.error);
        }
        std::fs::create_dir_all(&args.out_dir)
            .with_context(|| format!("--out-dir {}: cannot create it", args.out_dir.display()))?;
        check_out_dir(&args.out_dir, &images)?;
        let infer_args = InferArgs {
            checkpoint: args.checkpoint.clone(),
            load_from: args.load_from.clone(),
            out_dir: args.out_dir.clone(),
            score_thr: args.score_thr,
            device,
        };
        let report = (entry.build.infer)(&config, &infer_args, &images)?;
        failed.extend(report.failed);
        println!(
            "{} image(s) written to {}",
            report.done.len(),
            args.out_dir.display()
        );
        if !failed.is_empty() {
            bail!(
                "{} input(s) failed: {}",
                failed.len(),
                failed
                    .iter()
                    .map(|f| f.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(())
    })
}
