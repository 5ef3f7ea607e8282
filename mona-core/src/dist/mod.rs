//! Training across processes: one process per device, launched by `mpirun` or Slurm
//! (`train --launcher mpi`), as PyTorch's `DistributedDataParallel` runs under mmcv's
//! `init_dist('mpi')`.
//!
//! A [`ProcessGroup`] is what the runner needs of the launcher: this process's rank among
//! the world, its rank on its own machine (which device it takes), and the collectives that
//! keep the ranks in step. The MPI group (feature `mpi`) is [`mpi::MpiGroup`]; a run without
//! a launcher has no group and trains alone.
//!
//! The contract is the one of `train --gpus N`'s threads: rank `r` of `W` trains batch
//! `W·i + r` of the loader at iteration `i` with the device seed of replica `r`, the gradients
//! are summed over the ranks and divided by `W`, every rank takes the same optimizer step, and
//! so a run on `W` processes with batch `B` equals one process with batch `W·B` up to summation
//! order. Only rank 0 writes logs, checkpoints and evaluations.

pub mod collect;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod wire;

use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use crate::config::ConfigError;

/// Why a collective failed.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    #[error("rank {rank}: {what}: {message}")]
    Collective {
        rank: usize,
        what: String,
        message: String,
    },
    #[error(
        "--launcher mpi needs a build with MPI: `cargo build --release -p mona-tools --features mpi` (Open MPI's libopenmpi-dev and clang installed)"
    )]
    NoMpi,
    #[error("--launcher {0}: expected `none` or `mpi`")]
    UnknownLauncher(String),
    #[error("--launcher mpi runs one device per process; --gpus {0} is for one process's threads")]
    ThreadsAndProcesses(usize),
    /// Bytes from another rank that do not decode (different builds of mona in one job).
    #[error(
        "{what}: a rank sent data that does not decode ({message}); are all ranks the same build?"
    )]
    Wire { what: String, message: String },
    /// Gathered results that do not cover a set exactly once.
    #[error("{what}: {message}")]
    Coverage { what: String, message: String },
}

/// The processes of a distributed run, as the runner sees them.
pub trait ProcessGroup {
    /// This process's rank, `0..world()`.
    fn rank(&self) -> usize;
    /// How many processes train.
    fn world(&self) -> usize;
    /// This process's rank among those on its machine (which device it takes).
    fn local_rank(&self) -> usize;
    /// Sums `values` element-wise over the ranks, in place: every rank receives the same
    /// sums. `what` names the exchange in errors.
    fn all_reduce_sum_f32(&self, what: &str, values: &mut [f32]) -> Result<(), DistError>;
    /// As [`all_reduce_sum_f32`](Self::all_reduce_sum_f32), in double precision.
    fn all_reduce_sum_f64(&self, what: &str, values: &mut [f64]) -> Result<(), DistError>;
    /// Waits until every rank arrives.
    fn barrier(&self, what: &str) -> Result<(), DistError>;
    /// Gathers every rank's `bytes` on rank 0: `Some(parts)` there, `parts[r]` rank `r`'s,
    /// and `None` on the other ranks (mmcv's `collect_results`).
    fn gather_bytes(&self, what: &str, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError>;
    /// Replaces `bytes` on every rank with rank 0's.
    fn broadcast_bytes(&self, what: &str, bytes: &mut Vec<u8>) -> Result<(), DistError>;
    /// Ends every process of the job with exit status `code` (after this rank printed why).
    fn abort(&self, code: i32) -> !;
}

/// A process group shared by the parts of a run (on the thread that trains: MPI's
/// communicators are not shared between threads).
#[derive(Clone)]
pub struct SharedGroup(pub Rc<dyn ProcessGroup>);

impl std::ops::Deref for SharedGroup {
    type Target = dyn ProcessGroup;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for SharedGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rank {} of {}", self.rank(), self.world())
    }
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<SharedGroup>> = const { std::cell::RefCell::new(None) };
}

/// Makes `group` the process group of this thread's training until dropped: what `SyncBN`
/// layers sum their statistics over when the thread trains no replica of a thread group.
pub struct Entered(());

impl Entered {
    pub fn enter(group: SharedGroup) -> Self {
        CURRENT.with(|c| *c.borrow_mut() = Some(group));
        Entered(())
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}

/// The process group this thread trains in, if any ([`Entered`]).
pub fn current() -> Option<SharedGroup> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether this process writes (logs, checkpoints, evaluations): rank 0, or a run alone.
pub fn is_primary(group: Option<&SharedGroup>) -> bool {
    group.is_none_or(|g| g.rank() == 0)
}

/// mmdet's `--launcher`: how the processes of a run were started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Launcher {
    /// One process (threads for `--gpus N`).
    #[default]
    None,
    /// `mpirun -np N` or Slurm's `srun --mpi=pmix`: ranks and the rendezvous come from MPI.
    Mpi,
}

impl FromStr for Launcher {
    type Err = DistError;
    fn from_str(s: &str) -> Result<Self, DistError> {
        match s {
            "none" => Ok(Self::None),
            "mpi" => Ok(Self::Mpi),
            other => Err(DistError::UnknownLauncher(other.to_string())),
        }
    }
}

/// How long a collective may wait for the other ranks before the job is aborted: the config's
/// `dist_params.timeout` (seconds, mmcv's `dist_params` section), else 1800 s (PyTorch's).
pub fn collective_timeout(cfg: &crate::config::Config) -> Result<Duration, ConfigError> {
    match cfg.get("dist_params.timeout") {
        Some(node) => {
            let secs: f64 = node.extract()?;
            if !(secs.is_finite() && secs > 0.0) {
                return Err(node.invalid("expected a positive number of seconds"));
            }
            Ok(Duration::from_secs_f64(secs))
        }
        None => Ok(Duration::from_secs(1800)),
    }
}

/// The device a rank trains on: `cuda:LOCAL_RANK` when `--device` names CUDA, else the
/// device named (every rank of a CPU machine takes the CPU).
pub fn rank_device_name(device: &str, local_rank: usize) -> String {
    if device.starts_with("cuda") {
        format!("cuda:{local_rank}")
    } else {
        device.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launchers_parse_and_devices_follow_the_local_rank() {
        assert_eq!("mpi".parse::<Launcher>().unwrap(), Launcher::Mpi);
        assert_eq!("none".parse::<Launcher>().unwrap(), Launcher::None);
        assert_eq!(
            "slurm".parse::<Launcher>().unwrap_err().to_string(),
            "--launcher slurm: expected `none` or `mpi`"
        );
        assert_eq!(rank_device_name("cuda:0", 3), "cuda:3");
        assert_eq!(rank_device_name("cuda", 1), "cuda:1");
        assert_eq!(rank_device_name("flex", 1), "flex");
        assert!(is_primary(None));
    }
}
