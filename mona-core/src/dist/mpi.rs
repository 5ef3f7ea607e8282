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

use mpi::Count;
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;

use super::{DistError, ProcessGroup};

/// The most bytes one MPI call moves: its counts and displacements are C `int`s.
const MAX_CALL_BYTES: usize = i32::MAX as usize;

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

    /// The lengths first (every rank learns them, so all agree on the rounds), then the
    /// bytes in rounds of at most [`MAX_CALL_BYTES`] in all, so that results of any size pass
    /// `MPI_Gatherv`'s `int` counts.
    fn gather_bytes(&self, what: &str, bytes: &[u8]) -> Result<Option<Vec<Vec<u8>>>, DistError> {
        let root = self.world.process_at_rank(0);
        let mut lens = vec![0u64; self.size];
        self.watched(what, || {
            self.world
                .all_gather_into(&(bytes.len() as u64), &mut lens[..])
        });
        let lens: Vec<usize> = lens.iter().map(|&l| l as usize).collect();
        let mut parts: Vec<Vec<u8>> = match self.rank {
            0 => lens.iter().map(|&l| Vec::with_capacity(l)).collect(),
            _ => Vec::new(),
        };
        let per_round = (MAX_CALL_BYTES / self.size).max(1);
        let longest = lens.iter().copied().max().unwrap_or(0);
        let mut offset = 0;
        while offset < longest {
            let mine = &bytes[offset.min(bytes.len())..(offset + per_round).min(bytes.len())];
            if self.rank == 0 {
                let counts: Vec<Count> = lens
                    .iter()
                    .map(|&l| (l.min(offset + per_round).saturating_sub(offset)) as Count)
                    .collect();
                let displs: Vec<Count> = counts
                    .iter()
                    .scan(0, |next, &c| {
                        let d = *next;
                        *next += c;
                        Some(d)
                    })
                    .collect();
                let mut buf = vec![0u8; counts.iter().map(|&c| c as usize).sum()];
                {
                    let mut into = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                    self.watched(what, || root.gather_varcount_into_root(mine, &mut into));
                }
                for (part, (&c, &d)) in parts.iter_mut().zip(counts.iter().zip(&displs)) {
                    part.extend_from_slice(&buf[d as usize..(d + c) as usize]);
                }
            } else {
                self.watched(what, || root.gather_varcount_into(mine));
            }
            offset += per_round;
        }
        Ok((self.rank == 0).then_some(parts))
    }

    fn broadcast_bytes(&self, what: &str, bytes: &mut Vec<u8>) -> Result<(), DistError> {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        self.watched(what, || root.broadcast_into(&mut len));
        bytes.resize(len as usize, 0);
        for chunk in bytes.chunks_mut(MAX_CALL_BYTES) {
            self.watched(what, || root.broadcast_into(chunk));
        }
        Ok(())
    }

    fn abort(&self, code: i32) -> ! {
        abort_world(code)
    }
}
