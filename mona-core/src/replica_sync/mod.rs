//! What the replicas of a data-parallel run exchange while they compute, beyond the
//! gradients that the runner averages: SyncBN's batch statistics.
//!
//! - [`group`]: the rendezvous that sums host vectors over the ranks, in rank order.
//! - [`member`]: which rank the current thread trains, and its turn on the random stream.
//! - [`sum_op`]: the differentiable sum across replicas that SyncBN is built on.

pub mod group;
pub mod member;
pub mod sum_op;

pub use group::{ExchangeError, Phase, ReplicaGroup};
pub use member::{Membership, StreamTurn, current};
pub use sum_op::{SumLink, replica_sum};
