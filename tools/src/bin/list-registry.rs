//! `list-registry`: every registry of the program and the names registered in it.

use std::process::ExitCode;

use clap::Parser;

/// List every registry (backbone, tuning method, head, ...) and its registered names, one
/// line per registry. A name missing here is a crate the binary does not link.
#[derive(Parser, Debug)]
#[command(name = "list-registry", version)]
struct Args {}

fn main() -> ExitCode {
    let Args {} = Args::parse();
    mona_tools::cli::run(|| -> anyhow::Result<()> {
        for line in mona_tools::registries::registry_lines() {
            println!("{line}");
        }
        Ok(())
    })
}
