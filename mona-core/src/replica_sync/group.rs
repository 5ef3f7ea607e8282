//! The replicas of a data-parallel run as a group that sums small host vectors in the middle
//! of their forward and backward passes (SyncBN's batch statistics and their gradients).
//!
//! Every replica thread calls [`ReplicaGroup::sum`] the same number of times, in the same
//! order, in each phase: the k-th call of a phase on every rank meets the k-th call of the
//! other ranks, and all of them receive the sum of their vectors, added in rank order (so
//! every rank holds bit-identical results). A call also carries a tag that must be equal on
//! every rank (the backward exchanges tag the forward exchange they belong to): replicas
//! that ran their passes in different orders get an error instead of summing unrelated
//! statistics or waiting for each other forever. A rank that stops (a panic, an error of
//! the training loop) marks the group failed, which wakes and fails the ranks waiting for it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The two passes, each with its own sequence of exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Forward,
    Backward,
}

/// Why an exchange did not give a sum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExchangeError {
    #[error(
        "data-parallel replica {rank} stopped while the others waited for its batch statistics"
    )]
    Stopped { rank: usize },
    #[error(
        "data-parallel replicas disagree at {phase:?} exchange {position}: rank {rank} sent {what} {theirs}, rank 0 sent {ours} (the replicas' models must run the same synchronised layers in the same order)"
    )]
    Mismatch {
        phase: Phase,
        position: u64,
        rank: usize,
        what: &'static str,
        ours: u64,
        theirs: u64,
    },
}

/// One exchange: what each rank sent, then the sum they all read.
#[derive(Default)]
struct Round {
    parts: Vec<Option<(u64, Vec<f32>)>>,
    result: Option<Arc<Result<Vec<f32>, ExchangeError>>>,
    taken: usize,
}

struct State {
    rounds: HashMap<(Phase, u64), Round>,
    /// Per rank, the next position of each phase ([forward, backward]).
    next: Vec<[u64; 2]>,
    stopped: Option<usize>,
}

/// The ranks `0..world` of one data-parallel run.
pub struct ReplicaGroup {
    world: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl fmt::Debug for ReplicaGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaGroup")
            .field("world", &self.world)
            .finish_non_exhaustive()
    }
}

impl ReplicaGroup {
    pub fn new(world: usize) -> Arc<Self> {
        Arc::new(Self {
            world,
            state: Mutex::new(State {
                rounds: HashMap::new(),
                next: vec![[0; 2]; world],
                stopped: None,
            }),
            changed: Condvar::new(),
        })
    }

    pub fn world(&self) -> usize {
        self.world
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A rank that panicked while holding the lock left whole values behind (every
        // update below is a single assignment or push).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `rank`'s next position in `phase` (its exchanges are numbered in call order).
    pub fn next_position(&self, rank: usize, phase: Phase) -> u64 {
        let mut state = self.lock();
        let slot = &mut state.next[rank][phase as usize];
        let position = *slot;
        *slot += 1;
        position
    }

    /// Marks `rank` as stopped: every waiting and later exchange fails.
    pub fn stop(&self, rank: usize) {
        let mut state = self.lock();
        state.stopped.get_or_insert(rank);
        drop(state);
        self.changed.notify_all();
    }

    /// The first rank that stopped, if any.
    pub fn stopped(&self) -> Option<usize> {
        self.lock().stopped
    }

    /// Sums `data` over every rank's call at (`phase`, `position`), in rank order. `tag`
    /// must be the same on every rank, as must the vectors' lengths.
    pub fn sum(
        &self,
        rank: usize,
        phase: Phase,
        position: u64,
        tag: u64,
        data: Vec<f32>,
    ) -> Result<Vec<f32>, ExchangeError> {
        let key = (phase, position);
        let mut state = self.lock();
        if let Some(stopped) = state.stopped {
            return Err(ExchangeError::Stopped { rank: stopped });
        }
        let world = self.world;
        let round = state.rounds.entry(key).or_default();
        if round.parts.is_empty() {
            round.parts = vec![None; world];
        }
        round.parts[rank] = Some((tag, data));
        if round.parts.iter().all(Option::is_some) {
            round.result = Some(Arc::new(reduce(phase, position, &round.parts)));
            round.parts.clear();
            self.changed.notify_all();
        }
        loop {
            let stopped = state.stopped;
            let round = state
                .rounds
                .get_mut(&key)
                .expect("a round lives until all read it");
            if let Some(result) = round.result.clone() {
                round.taken += 1;
                if round.taken == world {
                    state.rounds.remove(&key);
                }
                return (*result).clone();
            }
            if let Some(stopped) = stopped {
                return Err(ExchangeError::Stopped { rank: stopped });
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// The rank-ordered sum of one round's parts, or the first disagreement with rank 0.
fn reduce(
    phase: Phase,
    position: u64,
    parts: &[Option<(u64, Vec<f32>)>],
) -> Result<Vec<f32>, ExchangeError> {
    let (tag, first) = parts[0].as_ref().expect("every rank has sent");
    let mut sum = first.clone();
    for (rank, part) in parts.iter().enumerate().skip(1) {
        let (their_tag, data) = part.as_ref().expect("every rank has sent");
        let mismatch = |what, ours: usize, theirs: usize| ExchangeError::Mismatch {
            phase,
            position,
            rank,
            what,
            ours: ours as u64,
            theirs: theirs as u64,
        };
        if their_tag != tag {
            return Err(mismatch("tag", *tag as usize, *their_tag as usize));
        }
        if data.len() != sum.len() {
            return Err(mismatch("length", sum.len(), data.len()));
        }
        for (s, x) in sum.iter_mut().zip(data) {
            *s += x;
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_ranks<T: Send + 'static>(
        group: &Arc<ReplicaGroup>,
        f: impl Fn(&ReplicaGroup, usize) -> T + Send + Sync + 'static,
    ) -> Vec<T> {
        let f = Arc::new(f);
        let handles: Vec<_> = (0..group.world())
            .map(|rank| {
                let (group, f) = (group.clone(), f.clone());
                std::thread::spawn(move || f(&group, rank))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn every_rank_reads_the_rank_ordered_sum() {
        let group = ReplicaGroup::new(3);
        let sums = run_ranks(&group, |g, rank| {
            (0..4)
                .map(|_| {
                    let pos = g.next_position(rank, Phase::Forward);
                    let x = (rank + 1) as f32;
                    g.sum(rank, Phase::Forward, pos, 7, vec![x, 10.0 * x])
                        .unwrap()
                })
                .collect::<Vec<_>>()
        });
        for per_rank in sums {
            assert_eq!(per_rank, vec![vec![6.0, 60.0]; 4]);
        }
        assert!(
            group.lock().rounds.is_empty(),
            "finished rounds are dropped"
        );
    }

    #[test]
    fn disagreeing_tags_fail_every_rank_instead_of_waiting() {
        let group = ReplicaGroup::new(2);
        let results = run_ranks(&group, |g, rank| {
            g.sum(rank, Phase::Backward, 0, 3 + rank as u64, vec![1.0])
        });
        let expected = ExchangeError::Mismatch {
            phase: Phase::Backward,
            position: 0,
            rank: 1,
            what: "tag",
            ours: 3,
            theirs: 4,
        };
        assert_eq!(results, vec![Err(expected.clone()), Err(expected.clone())]);
        assert_eq!(
            expected.to_string(),
            "data-parallel replicas disagree at Backward exchange 0: rank 1 sent tag 4, rank 0 \
             sent 3 (the replicas' models must run the same synchronised layers in the same order)"
        );
    }

    #[test]
    fn a_stopped_rank_wakes_the_waiting_ones() {
        let group = ReplicaGroup::new(2);
        let waiter = {
            let group = group.clone();
            std::thread::spawn(move || group.sum(0, Phase::Forward, 0, 0, vec![1.0]))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        group.stop(1);
        let err = waiter.join().unwrap().unwrap_err();
        assert_eq!(err, ExchangeError::Stopped { rank: 1 });
        assert_eq!(
            err.to_string(),
            "data-parallel replica 1 stopped while the others waited for its batch statistics"
        );
    }
}
