//! `convert-checkpoint IN OUT [--config CONFIG] [--strict] [--merge-lora [--load-from CKPT]]`:
//! a checkpoint to safetensors.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config_args::load_config;
use crate::convert::{BackboneOptions, convert_plain, convert_through_backbone, format_conversion};
use crate::merge_lora::merge_lora;
use clap::Parser;

/// Convert a PyTorch `.pth` (`state_dict` or `model` key, or a bare dict) or safetensors file
/// to safetensors.
///
/// Without `--config` every float tensor is copied under its key. With `--config` the file is
/// loaded into that config's backbone (a `backbone.` prefix is stripped), the key report
/// (applied / missing / unused / recomputed / resized) is printed, and the backbone's
/// parameters loaded from the file are written under the official keys: this turns a
/// Microsoft Swin release into a clean backbone file.
///
/// With `--config CONFIG --merge-lora`, IN is a LoRA model's training checkpoint, state dict or
/// adapter file, and OUT the same model with every LoRA update folded into its `attn.qkv`
/// weight: it loads with `model.backbone.method.type=full` (or `fixed`) and gives the same
/// outputs.
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
    #[arg(long, requires = "config", conflicts_with = "merge_lora")]
    include_missing: bool,
    /// Fold the LoRA updates of IN (trained with CONFIG) into the weights they adapt and write
    /// the whole model as a plain checkpoint.
    #[arg(long, requires = "config", conflicts_with = "strict")]
    merge_lora: bool,
    /// With --merge-lora and an adapter file: the pretrained backbone under it (default: the
    /// config's `load_from`).
    #[arg(long, requires = "merge_lora")]
    load_from: Option<PathBuf>,
}

/// The binary's `main`: parses the command line and runs it.
pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::cli::run(|| -> anyhow::Result<()> {
        if let Some(input) = [Some(&args.input), args.load_from.as_ref()]
            .into_iter()
            .flatten()
            .find(|i| crate::paths::same_file(i, &args.output))
        {
            anyhow::bail!(
                "{}: is the input {}; refusing to write over it",
                args.output.display(),
                input.display()
            );
        }
        if let (true, Some(path)) = (args.merge_lora, &args.config) {
            let config = load_config(path, &args.cfg_options)?;
            let pretrained = mona_core::task_setup::load_from(&config, args.load_from.as_deref())?;
            let merge = merge_lora(
                &args.input,
                &args.output,
                &config,
                &args.backbone_key,
                pretrained.as_deref(),
            )?;
            if let Some(p) = &merge.pretrained {
                println!("pretrained backbone {}", p.display());
            } else if let Some(p) = &args.load_from {
                // A full checkpoint carries its whole backbone: the weights given are not read.
                tracing::warn!(
                    "--load-from {}: not used: {} is a full checkpoint with its own backbone (--load-from goes under an adapter file)",
                    p.display(),
                    args.input.display()
                );
            }
            println!(
                "merged the LoRA updates into {} attn.qkv weights; load it with method `full` or `fixed`",
                merge.merged
            );
            print!(
                "{}",
                format_conversion(&args.input, &args.output, &merge.conversion)
            );
            return Ok(());
        }
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
