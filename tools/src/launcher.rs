//! `--launcher`: how the processes of a `train` or `test` job were started, and the MPI world
//! of a `--features mpi` build.

use mona_core::config::Config;
use mona_core::dist::{Launcher, SharedGroup, rank_device_name};

/// The process group `launcher` asks for: none, or the MPI world with the config's collective
/// timeout.
pub fn process_group(launcher: Launcher, config: &Config) -> anyhow::Result<Option<SharedGroup>> {
    match launcher {
        Launcher::None => Ok(None),
        Launcher::Mpi => mpi_group(config).map(Some),
    }
}

#[cfg(feature = "mpi")]
fn mpi_group(config: &Config) -> anyhow::Result<SharedGroup> {
    let timeout = mona_core::dist::collective_timeout(config)?;
    let group = SharedGroup(mona_core::dist::mpi::MpiGroup::init(timeout)?);
    tracing::info!(
        "rank {} of {} (local rank {})",
        group.rank(),
        group.world(),
        group.local_rank()
    );
    Ok(group)
}

#[cfg(not(feature = "mpi"))]
fn mpi_group(_: &Config) -> anyhow::Result<SharedGroup> {
    Err(mona_core::dist::DistError::NoMpi.into())
}

/// The device this process trains or tests on: `--device`, or for a rank of a distributed
/// job the device of its local rank ([`rank_device_name`]).
pub fn device_name(device: &str, process: Option<&SharedGroup>) -> String {
    match process {
        Some(g) => rank_device_name(device, g.local_rank()),
        None => device.to_string(),
    }
}

/// Runs `body` as this process's part of the job: alone, or as a rank, whose failure prints
/// `error: rank R: ...` and aborts every process of the job, so that no rank waits for it.
pub fn run_as_rank(
    process: Option<&SharedGroup>,
    body: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    match process {
        None => body(),
        Some(group) => body().map_err(|e| {
            eprintln!(
                "error: rank {}: {}",
                group.rank(),
                crate::cli::one_line(e.as_ref())
            );
            group.abort(1)
        }),
    }
}
