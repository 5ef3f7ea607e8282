//! `convert-checkpoint IN OUT [--config CONFIG] [--strict]`: a checkpoint to safetensors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mona_tools::config_args::load_config;
use mona_tools::convert::{
    BackboneOptions, convert_plain, convert_through_backbone, format_conversion,
};

/// Convert a PyTorch `.pth` (`state_dict` or `model` key, or a bare dict) or safetensors file
/// to safetensors.
///
/// Without `--config` every float tensor is copied under its key. With `--config` the file is
/// loaded into that config's backbone (a `backbone.` prefix is stripped), the key report
/// (applied / missing / unused / recomputed / resized) is printed, and the backbone's
/// parameters loaded from the file are written under the official keys: this turns a
/// Microsoft Swin release into a clean backbone file.
#[derive(Parser, Debug)]
#[command(name = "convert-checkpoint", version)]
struct Args {
    /// The checkpoint to read.
    input: PathBuf,
    /// The safetensors file to write (atomically).
    output: PathBuf,
    /// Map the checkpoint onto the backbone of this config.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides of the config, mmcv style.
    #[arg(long = "cfg-options", value_name = "KEY=VALUE", num_args = 1.., requires = "config")]
    cfg_options: Vec<String>,
    /// Where the backbone is in the config.
    #[arg(long, default_value = "model.backbone", requires = "config")]
    backbone_key: String,
    /// Fail unless every backbone parameter is in the checkpoint and every key is used.
    #[arg(long, requires = "config")]
    strict: bool,
    /// Also write the backbone parameters the checkpoint lacks, at their initial values.
    #[arg(long, requires = "config")]
    include_missing: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    mona_tools::cli::run(|| -> anyhow::Result<()> {
        let conversion = match &args.config {
            Some(path) => {
                let config = load_config(path, &args.cfg_options)?;
                let options = BackboneOptions {
                    strict: args.strict,
                    include_missing: args.include_missing,
                };
                convert_through_backbone(
                    &args.input,
                    &args.output,
                    &config,
                    &args.backbone_key,
                    &options,
                )?
            }
            None => convert_plain(&args.input, &args.output)?,
        };
        print!(
            "{}",
            format_conversion(&args.input, &args.output, &conversion)
        );
        Ok(())
    })
}
