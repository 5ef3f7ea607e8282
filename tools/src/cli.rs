//! What every binary does around its real work: logging and the error report.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

/// The log filter without `RUST_LOG`: `info` for this project's crates and binaries, `warn`
/// for the libraries under them. burn's cubecl backends log every autotune run and, on the
/// cubecl CPU runtime, every kernel's IR after every compiler pass at `info`: millions of
/// lines for one fixture check.
pub const DEFAULT_LOG_FILTER: &str = "warn,mona=info,train=info,test=info,bench=info";

/// Logs to stderr (stdout carries the tool's output), filtered by `RUST_LOG`, default
/// [`DEFAULT_LOG_FILTER`]; `error` on the ranks other than 0 of a job started by an MPI or
/// Slurm launcher, as mmcv's loggers do, so that a job logs each line once.
pub fn init_tracing() {
    let default = if launched_rank().is_some_and(|r| r > 0) {
        "error"
    } else {
        DEFAULT_LOG_FILTER
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second initialisation (tests calling `main`-like code twice) is harmless: ignore it.
    let _ = subscriber(filter, std::io::stderr, colour_on_stderr()).try_init();
}

/// This process's rank as its launcher set it: Open MPI's `mpirun`, PMIx (Slurm's
/// `srun --mpi=pmix`), MPICH's PMI, or Slurm itself.
fn launched_rank() -> Option<usize> {
    [
        "OMPI_COMM_WORLD_RANK",
        "PMIX_RANK",
        "PMI_RANK",
        "SLURM_PROCID",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok()?.parse().ok())
}

/// Colour codes only for a person: stderr is a terminal and `NO_COLOR` is unset or empty
/// (<https://no-color.org>). A log redirected to a file or a pipe gets plain text.
fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    std::io::stderr().is_terminal() && !no_color
}

/// The binaries' log format and filter, writing to `writer`.
fn subscriber<W>(filter: EnvFilter, writer: W, ansi: bool) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .finish()
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

/// Runs `body` on one of the threads of rayon's global pool (the pool that burn-flex, gemm
/// and the fused kernels split their work over), and waits for it.
///
/// From outside the pool, every parallel op is a hand-over: the calling thread queues the
/// work, wakes the pool's threads, sleeps until they finish and is woken again, while one
/// more thread than the pool's size competes for the cores. Run from a thread of the pool,
/// an op starts on that thread at once and the others join in: with `RAYON_NUM_THREADS`
/// threads in all, one per core, and no thread switch per op.
///
/// The body's thread may block outside rayon (waiting for a batch from the data workers, or
/// for the replicas of a data-parallel run, which queue work on the same pool); the other
/// threads of the pool keep serving that work. A pool of one thread could not, so then the
/// body stays on the calling thread.
pub fn on_compute_pool<R: Send>(body: impl FnOnce() -> R + Send) -> R {
    // Pool threads get the main thread's stack size (rayon's default is smaller), as a
    // model's forward and backward passes now run on one of them. Building fails only if
    // the global pool already exists, which leaves it as it is.
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(MAIN_STACK_BYTES)
        .build_global();
    if rayon::current_num_threads() < 2 {
        return body();
    }
    rayon::scope(|_| body())
}

/// The stack of a Linux main thread (8 MiB).
const MAIN_STACK_BYTES: usize = 8 << 20;

/// Runs a binary's body after [`crate::link_all`] and [`init_tracing`]: on failure prints
/// `error: <message>` on stderr and exits with status 1.
///
/// Generic over the error so that binaries can use `anyhow` while this library does not.
pub fn run<E>(body: impl FnOnce() -> Result<(), E> + Send) -> ExitCode
where
    E: std::ops::Deref<Target = dyn std::error::Error + Send + Sync + 'static> + Send,
{
    crate::link_all();
    init_tracing();
    match on_compute_pool(body) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&*error));
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::EnvFilter;

    use super::{DEFAULT_LOG_FILTER, subscriber};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_default_filter_keeps_our_info_and_drops_library_info() {
        let out = Captured::default();
        let writer = out.clone();
        let logs = subscriber(
            EnvFilter::new(DEFAULT_LOG_FILTER),
            move || writer.clone(),
            false,
        );
        tracing::subscriber::with_default(logs, || {
            tracing::info!(target: "mona_core::runner", "epoch done");
            tracing::info!(target: "mona_det::train", "det epoch done");
            tracing::info!(target: "train", "from the binary");
            tracing::info!(target: "cubecl_runtime::tune", "Tuning MatmulKey");
            tracing::info!(target: "cubecl_cpu::compiler", "IR after pass sroa");
            tracing::warn!(target: "cubecl_runtime::tune", "autotune cache unreadable");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        for kept in [
            "epoch done",
            "det epoch done",
            "from the binary",
            "autotune cache unreadable",
        ] {
            assert!(text.contains(kept), "{kept:?} missing from {text:?}");
        }
        for dropped in ["Tuning MatmulKey", "IR after pass"] {
            assert!(!text.contains(dropped), "{dropped:?} kept in {text:?}");
        }
    }
}
