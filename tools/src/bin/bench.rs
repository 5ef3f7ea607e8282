//! `bench [--device flex|cuda:N|cubecl-cpu] [--case NAME ...] [--warmup N] [--steps N] [--list]`:
//! images/s and peak memory (device, and the process's peak RSS) of the Swin + Mona performance
//! cases, one JSON line per case. The PyTorch numbers in the lines are a fallback measured on
//! another day, not a comparison: `scripts/bench-vs-pytorch.sh` runs this binary and the
//! PyTorch model of `bench/pytorch/` side by side.
//!
//! Without `--case`, runs the GPU table on a CUDA device and the CPU cases on `flex`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use mona_core::task::parse_device;
use mona_tools::bench::{all_cases, cpu_cases, gpu_cases, run_case};

#[derive(Parser, Debug)]
#[command(name = "bench", version)]
struct Args {
    /// `flex` (CPU), `cuda:N` (a build with `--features cuda`) or `cubecl-cpu` (burn's cubecl
    /// backend on the CPU, a build with `--features cubecl-cpu`).
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
    /// Shards a training batch runs as, as `train`'s `runner.batch_shards` (1: whole).
    #[arg(long, default_value_t = mona_core::runner::DEFAULT_BATCH_SHARDS)]
    batch_shards: usize,
    /// List the cases (with their fallback PyTorch numbers from another day), then exit.
    #[arg(long)]
    list: bool,
    /// Instead of timing: run the golden fixtures of DIR on the device (the parity check of
    /// `mona-core/tests/fixtures.rs`), one line per fixture; fails if any fixture fails.
    #[arg(long, value_name = "DIR")]
    fixtures: Option<std::path::PathBuf>,
    /// A case of your own instead of the table: `ARCH:METHOD:train|infer:BATCH:SIZE[:bf16]`
    /// (e.g. `swin_b:adapter:train:32:224`), to compare methods or shapes.
    #[arg(long, value_name = "SPEC")]
    custom: Vec<String>,
    /// Profile Mona's parts (forward + backward): depthwise 3/5/7 and 1×1 convs and GELU on
    /// `BATCH×CHANNELS×SIZE×SIZE`, and a whole Mona module on `BATCH×SIZE²×DIM` tokens (Swin-B
    /// stage 1 at batch 32 is `32:64:56:128`).
    #[arg(long, value_name = "B:C:S:DIM")]
    profile_mona: Option<String>,
    /// Check and time the NCCL all-reduce of `train --gpus N` on N CUDA devices from
    /// `--device` on (N = 1 checks that NCCL loads and runs).
    #[arg(long, value_name = "N")]
    all_reduce_check: Option<usize>,
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
        let device = parse_device(&args.device)?;
        if let Some(dir) = &args.fixtures {
            let failed = run_fixtures(dir, &device)?;
            println!(
                "{}",
                serde_json::json!({"fixtures": dir, "device": args.device, "failed": failed})
            );
            if !failed.is_empty() {
                bail!("fixtures failed on {}: {failed:?}", args.device);
            }
            return Ok(());
        }
        if let Some(n) = args.all_reduce_check {
            if !args.device.starts_with("cuda") {
                bail!(
                    "--all-reduce-check needs CUDA devices; --device is {}",
                    args.device
                );
            }
            let mut devices = vec![device.clone()];
            devices.extend(
                mona_core::runner::replica_devices(&device, &args.device, n)
                    .map_err(anyhow::Error::msg)?,
            );
            let (max_err, ms) = mona_tools::bench::all_reduce_check(&devices, args.steps)?;
            println!(
                "{}",
                serde_json::json!({"all_reduce": "nccl", "device": args.device, "devices": n,
                    "params": 1024 * 1024, "max_err": max_err, "ms": ms})
            );
            if max_err > 1e-5 {
                bail!("the NCCL mean is off by {max_err}");
            }
            return Ok(());
        }
        if let Some(spec) = &args.profile_mona {
            let v: Vec<usize> = spec.split(':').filter_map(|x| x.parse().ok()).collect();
            let [b, c, size, dim] = v[..] else {
                bail!("--profile-mona {spec}: expected BATCH:CHANNELS:SIZE:DIM");
            };
            let parts = mona_tools::bench::profile_mona_parts(
                &device,
                b,
                c,
                size,
                dim,
                args.warmup,
                args.steps,
            )?;
            for (part, warmup_ms, ms) in parts {
                println!(
                    "{}",
                    serde_json::json!({"profile": spec, "part": part, "device": args.device,
                        "warmup_ms": warmup_ms, "fwd_bwd_ms": ms})
                );
            }
            return Ok(());
        }
        let mut custom = Vec::new();
        for spec in &args.custom {
            custom.push(mona_tools::bench::custom_case(spec).map_err(anyhow::Error::msg)?);
        }
        let cases = if !custom.is_empty() {
            custom
        } else if args.cases.is_empty() {
            if args.device.starts_with("cuda") {
                gpu_cases()
            } else {
                cpu_cases()
            }
        } else {
            let all = all_cases();
            let mut picked = Vec::new();
            for name in &args.cases {
                match all.iter().find(|c| &c.name == name) {
                    Some(c) => picked.push(c.clone()),
                    None => bail!(
                        "unknown case `{name}`; cases: {}",
                        all.iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }
            }
            picked
        };
        if args.batch_shards == 0 {
            bail!("--batch-shards 0: a batch runs as at least 1 shard");
        }
        for case in &cases {
            tracing::info!(case = %case.name, "running");
            let result = run_case(
                case,
                &device,
                &args.device,
                args.warmup,
                args.steps,
                args.batch_shards,
            )
            .with_context(|| format!("case {}", case.name))?;
            println!("{}", serde_json::to_string(&result)?);
            std::io::stdout().flush()?;
        }
        Ok(())
    })
}

/// The golden fixture check on `device`; the names of the fixtures that failed.
#[cfg(feature = "fixtures")]
fn run_fixtures(
    dir: &std::path::Path,
    device: &burn::tensor::Device,
) -> anyhow::Result<Vec<String>> {
    mona_fixtures::golden::run_all(dir, &device.clone().autodiff()).map_err(anyhow::Error::msg)
}

/// This build has no fixture runner (test code, kept out of the default tools).
#[cfg(not(feature = "fixtures"))]
fn run_fixtures(dir: &std::path::Path, _: &burn::tensor::Device) -> anyhow::Result<Vec<String>> {
    bail!(
        "--fixtures {}: this build has no fixture runner; build the tools with --features fixtures (the cuda and cubecl-cpu builds have it)",
        dir.display()
    )
}
