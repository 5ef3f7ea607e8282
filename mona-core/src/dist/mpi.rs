//! The MPI process group (rsmpi on the system's Open MPI): ranks, the rendezvous and the
//! reductions come from MPI, as in Horovod and PyTorch's MPI backend.
//!
//! MPI's collectives have no timeout and a dead peer can leave the others waiting, so every
//! collective here is watched: if it has not completed after the run's timeout
//! (`dist_params.timeout`, seconds; 1800 by default, PyTorch's), the watching thread prints
//! the rank and the collective and calls `MPI_Abort`, which ends every process of the job.
//! A rank that fails on its own (bad data, a non-finite loss) aborts the job the same way
//! through [`ProcessGroup::abort`] after printing its error, so no rank waits for it.

use std::rc::Rc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::Duration;

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::{DistError, ProcessGroup};

enum Watch {
    Arm(String),
    Disarm,
}

/// `MPI_COMM_WORLD` of an initialised MPI, with this rank's local rank and a watchdog.
pub struct MpiGroup {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    local_rank: usize,
    watch: Sender<Watch>,
    /// Dropped last (fields drop in order): finalises MPI.
    _universe: Universe,
}

impl MpiGroup {
    /// Initialises MPI (with thread support for the watchdog) and joins the world. Fails
    /// when MPI was initialised before or the library refuses threads.
    pub fn init(timeout: Duration) -> Result<Rc<Self>, DistError> {
        let fail = |message: String| DistError::Collective {
            rank: 0,
            what: "MPI_Init".into(),
            message,
        };
        let (universe, threading) = mpi::initialize_with_threading(mpi::Threading::Multiple)
            .ok_or_else(|| fail("MPI is already initialised".into()))?;
        if threading != mpi::Threading::Multiple {
            return Err(fail(format!(
                "the MPI library gives {threading:?} thread support; the collective watchdog needs Multiple"
            )));
        }
        let world = universe.world();
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        let local_rank = world.split_shared(world.rank()).rank() as usize;
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("mona-collective-watchdog".into())
            .spawn(move || watchdog(rx, rank, timeout))
            .map_err(|e| fail(format!("cannot start the watchdog thread: {e}")))?;
        Ok(Rc::new(Self {
            world,
            rank,
            size,
            local_rank,
            watch: tx,
            _universe: universe,
        }))
    }

    /// Runs `f` with the watchdog armed for `what`.
    fn watched<T>(&self, what: &str, f: impl FnOnce() -> T) -> T {
        let _ = self.watch.send(Watch::Arm(what.to_string()));
        let out = f();
        let _ = self.watch.send(Watch::Disarm);
        out
    }
}

/// Waits for each armed collective to be disarmed within `timeout`; aborts the job if not.
fn watchdog(rx: Receiver<Watch>, rank: usize, timeout: Duration) {
    while let Ok(watch) = rx.recv() {
        let Watch::Arm(what) = watch else { continue };
        match rx.recv_timeout(timeout) {
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {
                eprintln!(
                    "error: rank {rank}: {what} did not complete within {timeout:?}: another rank died or hangs; aborting the job"
                );
                abort_world(1);
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// `MPI_Abort(MPI_COMM_WORLD, code)`: ends every process of the job.
fn abort_world(code: i32) -> ! {
    // SAFETY: MPI is initialised with MPI_THREAD_MULTIPLE, so any thread may call MPI_Abort,
    // and the world communicator handle is valid for the whole run.
    unsafe {
        mpi::ffi::MPI_Abort(mpi::ffi::RSMPI_COMM_WORLD, code);
    }
    std::process::exit(code)
}

impl ProcessGroup for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world(&self) -> usize {
        self.size
    }

    fn local_rank(&self) -> usize {
        self.local_rank
    }

    fn all_reduce_sum_f32(&self, what: &str, values: &mut [f32]) -> Result<(), DistError> {
        let send = values.to_vec();
        self.watched(what, || {
            self.world
                .all_reduce_into(&send[..], values, SystemOperation::sum())
        });
        Ok(())
    }

    fn all_reduce_sum_f64(&self, what: &str, values: &mut [f64]) -> Result<(), DistError> {
        let send = values.to_vec();
        self.watched(what, || {
            self.world
                .all_reduce_into(&send[..], values, SystemOperation::sum())
        });
        Ok(())
    }

    fn barrier(&self, what: &str) -> Result<(), DistError> {
        self.watched(what, || self.world.barrier());
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        abort_world(code)
    }
}
