//! `print-config CONFIG [--cfg-options KEY=VALUE ...]`: the fully merged config as TOML.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Print a config with its `_base_` files merged and `--cfg-options` applied, as TOML.
#[derive(Parser, Debug)]
#[command(name = "print-config", version)]
struct Args {
    /// The config file.
    config: PathBuf,
    /// Overrides in mmcv style: `a.b.c=value`, `list.0.type=X`, `key=None` removes a key.
    #[arg(long = "cfg-options", value_name = "KEY=VALUE", num_args = 1..)]
    cfg_options: Vec<String>,
}

/// The binary's `main`: parses the command line and runs it.
pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::cli::run(|| -> anyhow::Result<()> {
        let config = crate::config_args::load_config(&args.config, &args.cfg_options)?;
        print!("{}", config.to_toml_string());
        Ok(())
    })
}
