//! `bench [--device flex|cuda:N] [--case NAME ...] [--warmup N] [--steps N] [--list]`:
//! images/s and peak memory of the Swin + Mona performance cases, one JSON line per case,
//! with the official PyTorch code's numbers and our ratio to them.
//!
//! Without `--case`, runs the GPU table on a CUDA device and the CPU case on `flex`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use mona_core::task::parse_device;
use mona_tools::bench::{all_cases, cpu_cases, gpu_cases, run_case};

#[derive(Parser, Debug)]
#[command(name = "bench", version)]
struct Args {
    /// `flex` (CPU) or `cuda:N` (a build with `--features cuda`).
    #[arg(long, default_value = "flex")]
    device: String,
    /// Cases to run (see `--list`); default: the cases of the device kind.
    #[arg(long = "case", value_name = "NAME")]
    cases: Vec<String>,
    /// Untimed iterations first (kernel compilation and autotuning on CUDA).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// List the cases and their PyTorch reference numbers, then exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    mona_tools::cli::run(|| -> anyhow::Result<()> {
        let args = Args::parse();
        if args.list {
            for case in all_cases() {
                println!("{}", serde_json::to_string(&case)?);
            }
            return Ok(());
        }
        let device = parse_device(&args.device).map_err(anyhow::Error::msg)?;
        let cases = if args.cases.is_empty() {
            if args.device.starts_with("cuda") {
                gpu_cases()
            } else {
                cpu_cases()
            }
        } else {
            let all = all_cases();
            let mut picked = Vec::new();
            for name in &args.cases {
                match all.iter().find(|c| c.name == name) {
                    Some(c) => picked.push(c.clone()),
                    None => bail!(
                        "unknown case `{name}`; cases: {}",
                        all.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
                    ),
                }
            }
            picked
        };
        for case in &cases {
            tracing::info!(case = case.name, "running");
            let result = run_case(case, &device, &args.device, args.warmup, args.steps)
                .with_context(|| format!("case {}", case.name))?;
            println!("{}", serde_json::to_string(&result)?);
            std::io::stdout().flush()?;
        }
        Ok(())
    })
}
