//! `plot-log LOG.jsonl [LOG2.jsonl ...] --keys loss,accuracy_top-1 --out curve.png`: training
//! curves from the runner's `log.jsonl` as a PNG or SVG (mmdet's `analyze_logs.py plot_curve`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mona_tools::plot::{PlotOptions, XAxis, plot_logs};

/// Plot keys of `log.jsonl` files: one subplot per key, stacked vertically, one curve per log
/// (train records give losses and lr, val records the metrics), written as a PNG or an SVG.
#[derive(Parser, Debug)]
#[command(name = "plot-log", version)]
struct Args {
    /// The `log.jsonl` files (a work dir's run log); several logs are drawn on the same axes.
    #[arg(required = true, value_name = "LOG.jsonl")]
    logs: Vec<PathBuf>,
    /// The keys to plot, comma-separated or repeated: `loss,accuracy_top-1`.
    #[arg(long, required = true, value_delimiter = ',', value_name = "KEY,...")]
    keys: Vec<String>,
    /// The PNG or SVG to write, by its extension (its directory is created).
    #[arg(long, value_name = "PNG")]
    out: PathBuf,
    /// The x axis: the global iteration, or the epoch (train records averaged per epoch).
    #[arg(long, value_enum, default_value_t = XAxis::Iter)]
    x: XAxis,
    /// A title above the subplots.
    #[arg(long)]
    title: Option<String>,
    /// Image width in pixels.
    #[arg(long, default_value_t = 960)]
    width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 540)]
    height: u32,
    /// Legend names, one per log, comma-separated (default: from the file paths).
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    legend: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    mona_tools::cli::run(|| -> anyhow::Result<()> {
        let options = PlotOptions {
            keys: args.keys,
            x: args.x,
            title: args.title,
            width: args.width,
            height: args.height,
            legend: args.legend,
        };
        plot_logs(&args.logs, &options, &args.out)?;
        tracing::info!("saved the curves to {}", args.out.display());
        Ok(())
    })
}
