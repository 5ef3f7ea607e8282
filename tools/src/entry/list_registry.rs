//! `list-registry`: every registry of the program and the names registered in it.

use std::process::ExitCode;

use clap::Parser;

/// List every registry (backbone, tuning method, head, ...) and its registered names, one
/// line per registry. A name missing here is a crate the binary does not link.
#[derive(Parser, Debug)]
#[command(name = "list-registry", version)]
struct Args {}

/// The binary's `main`: parses the command line and runs it.
pub fn main() -> ExitCode {
    let Args {} = Args::parse();
    crate::cli::run(|| -> anyhow::Result<()> {
        for line in crate::registries::registry_lines() {
            println!("{line}");
        }
        Ok(())
    })
}
