//! What every binary does around its real work: logging and the error report.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

/// Logs to stderr (stdout carries the tool's output), filtered by `RUST_LOG`, default `info`.
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second initialisation (tests calling `main`-like code twice) is harmless: ignore it.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The error and its causes on one line, each cause only when it adds text.
///
/// Library errors already embed their source in their message (`{file}: cannot read: {io}`),
/// so printing the whole chain would repeat it.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

/// Runs a binary's body after [`crate::link_all`] and [`init_tracing`]: on failure prints
/// `error: <message>` on stderr and exits with status 1.
///
/// Generic over the error so that binaries can use `anyhow` while this library does not.
pub fn run<E>(body: impl FnOnce() -> Result<(), E>) -> ExitCode
where
    E: std::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static>,
{
    crate::link_all();
    init_tracing();
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&*error));
            ExitCode::from(1)
        }
    }
}
