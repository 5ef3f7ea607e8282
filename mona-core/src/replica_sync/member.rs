//! Which replica the current thread trains, and its turn on the backends' random stream.
//!
//! The backends' random stream (detection's samplers; dropout and DropPath draw through
//! [`crate::random::DrawScope`] instead) is process-wide on every backend (burn-flex and
//! cubecl seed one global generator): a replica seeds it and runs its forward
//! pass while holding [`StreamTurn`], so what it draws depends on its seed, not on thread
//! timing. A synchronised layer waits for the other replicas in the middle of that forward
//! pass, and they need the stream to get there: the wait gives the turn up
//! ([`while_waiting`]), and taking it back reseeds the stream from the replica's seed and
//! the number of waits so far, so the draws after it are as reproducible as those before.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, MutexGuard};

use burn::tensor::Device;

use super::group::ReplicaGroup;
use crate::runner::iter_seed;

static RANDOM_STREAM: Mutex<()> = Mutex::new(());

/// A thread's membership of a replica group.
#[derive(Clone)]
struct Member {
    group: Arc<ReplicaGroup>,
    rank: usize,
}

/// A thread's turn on the random stream.
struct Turn {
    guard: Option<MutexGuard<'static, ()>>,
    device: Device,
    seed: u64,
    waits: usize,
}

thread_local! {
    static MEMBER: RefCell<Option<Member>> = const { RefCell::new(None) };
    static TURN: RefCell<Option<Turn>> = const { RefCell::new(None) };
}

/// The group and rank of the replica this thread trains, if it is one of several.
pub fn current() -> Option<(Arc<ReplicaGroup>, usize)> {
    MEMBER.with(|m| m.borrow().as_ref().map(|m| (m.group.clone(), m.rank)))
}

/// Makes this thread rank `rank` of `group` until dropped. Dropped while the thread panics,
/// it stops the group, so the other ranks fail instead of waiting for this one.
pub struct Membership {
    group: Arc<ReplicaGroup>,
    rank: usize,
}

impl Membership {
    pub fn join(group: Arc<ReplicaGroup>, rank: usize) -> Self {
        MEMBER.with(|m| {
            *m.borrow_mut() = Some(Member {
                group: group.clone(),
                rank,
            })
        });
        Self { group, rank }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        MEMBER.with(|m| *m.borrow_mut() = None);
        if std::thread::panicking() {
            self.group.stop(self.rank);
        }
    }
}

/// This thread's turn on the random stream, seeded with `seed` on `device`, until dropped
/// (which first hands the queued work of a lazy backend over to the device, as it draws
/// when it executes).
pub struct StreamTurn(());

impl StreamTurn {
    pub fn take(device: &Device, seed: u64) -> Self {
        let guard = RANDOM_STREAM.lock().unwrap_or_else(|e| e.into_inner());
        device.seed(seed);
        TURN.with(|t| {
            *t.borrow_mut() = Some(Turn {
                guard: Some(guard),
                device: device.clone(),
                seed,
                waits: 0,
            })
        });
        StreamTurn(())
    }
}

impl Drop for StreamTurn {
    fn drop(&mut self) {
        if let Some(turn) = TURN.with(|t| t.borrow_mut().take()) {
            let _ = turn.device.flush();
            drop(turn.guard);
        }
    }
}

/// Runs `wait` without this thread's turn on the random stream (if it holds one), then takes
/// the turn back and reseeds the stream.
pub fn while_waiting<T>(wait: impl FnOnce() -> T) -> T {
    let held = TURN.with(|t| {
        let mut t = t.borrow_mut();
        let turn = t.as_mut()?;
        let _ = turn.device.flush();
        turn.guard.take()
    });
    let Some(guard) = held else { return wait() };
    drop(guard);
    let out = wait();
    let guard = RANDOM_STREAM.lock().unwrap_or_else(|e| e.into_inner());
    TURN.with(|t| {
        if let Some(turn) = t.borrow_mut().as_mut() {
            turn.waits += 1;
            turn.device.seed(iter_seed(turn.seed, turn.waits));
            turn.guard = Some(guard);
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica_sync::group::ExchangeError;
    use crate::replica_sync::group::Phase;

    #[test]
    fn membership_is_per_thread_and_a_panic_stops_the_group() {
        let group = ReplicaGroup::new(2);
        assert!(current().is_none());
        {
            let _m = Membership::join(group.clone(), 0);
            let (g, rank) = current().unwrap();
            assert!(Arc::ptr_eq(&g, &group));
            assert_eq!(rank, 0);
            let other = std::thread::spawn(current).join().unwrap();
            assert!(other.is_none());
        }
        assert!(current().is_none());
        let g = group.clone();
        let _ = std::thread::spawn(move || {
            let _m = Membership::join(g, 1);
            panic!("replica failed");
        })
        .join();
        assert_eq!(
            group.sum(0, Phase::Forward, 0, 0, vec![1.0]),
            Err(ExchangeError::Stopped { rank: 1 })
        );
    }
}
