//! `count-params CONFIG [--cfg-options ...] [--all-methods] [--json]`: parameter counts.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config_args::load_config;
use crate::count::{ModelCount, count_config};
use crate::keys::{format_groups, thousands};
use crate::methods::{all_methods, display_name, with_method};
use clap::Parser;

/// Count the backbone parameters of a config: total, trainable under the method's official
/// rule, and the share the official tools/train.py prints (trainable / original backbone).
#[derive(Parser, Debug)]
#[command(name = "count-params", version)]
struct Args {
    /// The config file.
    config: PathBuf,
    /// Overrides in mmcv style: `a.b.c=value`.
    #[arg(long = "cfg-options", value_name = "KEY=VALUE", num_args = 1..)]
    cfg_options: Vec<String>,
    /// Count every registered tuning method on this config's backbone.
    #[arg(long)]
    all_methods: bool,
    /// Also print one JSON object per method, one per line.
    #[arg(long)]
    json: bool,
    /// Where the backbone is in the config.
    #[arg(long, default_value = "model.backbone")]
    backbone_key: String,
}

fn print_single(count: &ModelCount) {
    println!(
        "method: {} (official {})",
        count.method, count.official_class
    );
    for part in &count.parts {
        println!(
            "{}: {} parameters = {} original + {} added by the method",
            part.name,
            thousands(part.total),
            thousands(part.original()),
            thousands(part.added)
        );
        println!("trainable ({}): {}", part.name, thousands(part.trainable));
    }
    if let Some(backbone) = count.backbone() {
        println!("share (trainable / original backbone, as the official tools/train.py prints):");
        println!("{}", count.table_row(0));
        if backbone.trainable_groups.is_empty() {
            println!("trainable keys: none");
        } else {
            println!("trainable keys:");
            print!("{}", format_groups(&backbone.trainable_groups, "  "));
        }
        if !backbone.frozen_in_training.is_empty() {
            let frozen = backbone.trainable - backbone.trainable_in_training;
            println!(
                "frozen_stages = {} also freezes {} of these during training (trainable while training: {}):",
                count
                    .frozen_stages
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "?".into()),
                thousands(frozen),
                thousands(backbone.trainable_in_training)
            );
            print!("{}", format_groups(&backbone.frozen_in_training, "  "));
        }
    }
}

fn print_table(counts: &[ModelCount], config: &std::path::Path) {
    let width = counts
        .iter()
        .map(|c| display_name(&c.method).len())
        .max()
        .unwrap_or(0);
    let original = counts
        .iter()
        .find_map(|c| c.backbone().map(|b| b.original()))
        .unwrap_or(0);
    println!(
        "{}: original backbone {} parameters; trainable backbone parameters (share of the original):",
        config.display(),
        thousands(original)
    );
    for count in counts {
        println!("{}", count.table_row(width));
    }
    for count in counts {
        if let Some(b) = count.backbone()
            && b.trainable_in_training != b.trainable
        {
            println!(
                "note: {}: frozen_stages = {} leaves {} trainable during training",
                display_name(&count.method),
                count.frozen_stages.unwrap_or_default(),
                thousands(b.trainable_in_training)
            );
        }
    }
}

/// The binary's `main`: parses the command line and runs it.
pub fn main() -> ExitCode {
    let args = Args::parse();
    crate::cli::run(|| -> anyhow::Result<()> {
        let config = load_config(&args.config, &args.cfg_options)?;
        let counts = if args.all_methods {
            let mut counts = Vec::new();
            for method in all_methods() {
                let swapped = with_method(&config, &args.backbone_key, method)?;
                match count_config(&swapped, &args.backbone_key) {
                    Ok(count) => counts.push(count),
                    // A plugin method that needs keys of its own cannot be built with
                    // defaults; the paper's nine always can.
                    Err(e) if !crate::methods::PAPER_METHODS.contains(&method) => {
                        tracing::warn!("skipping method {method}: {e}");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            print_table(&counts, &args.config);
            counts
        } else {
            let count = count_config(&config, &args.backbone_key)?;
            print_single(&count);
            vec![count]
        };
        if args.json {
            for count in &counts {
                println!("{}", count.to_json());
            }
        }
        Ok(())
    })
}
