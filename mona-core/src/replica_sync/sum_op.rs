//! A differentiable sum across the replicas (as `torch.distributed.nn.all_reduce`): every
//! replica gets the sum of all replicas' inputs, and in the backward pass every replica's
//! input gets the sum of all replicas' output gradients. That is the exact gradient of the
//! summed loss of all replicas, which is what data-parallel training averages.
//!
//! burn 0.22.1's own differentiable all-reduce runs on CUDA only (NCCL, the `Cube`
//! backend's collective). This one goes through host memory on every backend, the CPU
//! included: between the threads of one process ([`ReplicaGroup::sum`]), or between the
//! processes of a distributed run (their group's all-reduce). It is meant for small tensors (per-channel statistics): each
//! call reads its input back to the host.

use std::sync::Arc;

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};

use super::group::{Phase, ReplicaGroup};
use super::member::while_waiting;

/// Where one call exchanges: the replicas of a thread group (the group, this replica's rank,
/// the phase, its position in that phase, and the tag every rank must agree on), or the
/// processes of a distributed run, which call their collectives in the same order anyway.
#[derive(Debug, Clone)]
pub struct SumLink {
    threads: Option<ThreadLink>,
    phase: Phase,
}

#[derive(Debug, Clone)]
struct ThreadLink {
    group: Arc<ReplicaGroup>,
    rank: usize,
    position: u64,
    tag: u64,
}

impl SumLink {
    /// The next forward exchange of `rank` in `group`.
    pub fn forward(group: Arc<ReplicaGroup>, rank: usize) -> Self {
        let position = group.next_position(rank, Phase::Forward);
        Self {
            threads: Some(ThreadLink {
                group,
                rank,
                position,
                tag: position,
            }),
            phase: Phase::Forward,
        }
    }

    /// A forward exchange over the processes of the run this thread trains in
    /// ([`crate::dist::current`]).
    pub fn across_processes() -> Self {
        Self {
            threads: None,
            phase: Phase::Forward,
        }
    }

    /// The backward exchange of this forward one: the next backward position, tagged with
    /// this forward position (so replicas whose backward passes run in different orders
    /// are caught).
    fn backward(&self) -> Self {
        Self {
            threads: self.threads.as_ref().map(|t| ThreadLink {
                group: t.group.clone(),
                rank: t.rank,
                position: t.group.next_position(t.rank, Phase::Backward),
                tag: t.position,
            }),
            phase: Phase::Backward,
        }
    }

    /// The summed host values (f32); panics with the group's error (a backward step has no
    /// way to return one; the runner reports the panic). The wait gives up this thread's turn
    /// on the random stream either way, so threads and processes draw alike after it.
    fn exchange(&self, data: TensorData) -> TensorData {
        let shape = data.shape().clone();
        let mut values = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("an f32 tensor reads as f32");
        let summed = match &self.threads {
            Some(t) => while_waiting(|| {
                t.group
                    .sum(t.rank, self.phase, t.position, t.tag, values)
                    .map_err(|e| e.to_string())
            }),
            None => while_waiting(|| {
                let group = crate::dist::current().ok_or_else(|| {
                    "SyncBN across processes outside a distributed run".to_string()
                })?;
                let what = match self.phase {
                    Phase::Forward => "SyncBN statistics",
                    Phase::Backward => "SyncBN statistics' gradients",
                };
                group
                    .all_reduce_sum_f32(what, &mut values)
                    .map_err(|e| e.to_string())?;
                Ok(values)
            }),
        }
        .unwrap_or_else(|e| panic!("{e}"));
        TensorData::new(summed, shape)
    }
}

/// The sum across replicas as a backend operation: the concrete backends read the tensor
/// back and upload the sum (the default body); autodiff adds the backward exchange.
#[backend_extension(Autodiff, Flex, Cube: cfg(any(feature = "cuda", feature = "cubecl-cpu")))]
pub trait ReplicaSumBackend: Backend {
    fn replica_sum(tensor: FloatTensor<Self>, link: SumLink) -> FloatTensor<Self> {
        use burn::backend::TensorMetadata;
        let device = tensor.device();
        let dtype = tensor.dtype();
        let data = burn::tensor::try_read_sync(Self::float_into_data(tensor))
            .expect("a synchronous backend")
            .expect("the tensor is readable");
        let summed = link.exchange(data);
        let summed = if dtype == DType::F32 {
            summed
        } else {
            summed.convert_dtype(dtype)
        };
        Self::float_from_data(summed, &device)
    }
}

impl ReplicaSumBackend for burn::backend::Flex {}

#[cfg(any(feature = "cuda", feature = "cubecl-cpu"))]
impl ReplicaSumBackend for burn::backend::Cube {}

impl<B: Backend + ReplicaSumBackend, C: CheckpointStrategy> ReplicaSumBackend for Autodiff<B, C> {
    fn replica_sum(tensor: FloatTensor<Self>, link: SumLink) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct SumBackward;

        impl<B: Backend + ReplicaSumBackend> Backward<B, 1> for SumBackward {
            type State = SumLink;

            fn backward(self, ops: Ops<SumLink, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let link = ops.state.backward();
                unary::<B, _>(ops.parents, ops.node, grads, |grad| {
                    B::replica_sum(grad, link)
                });
            }
        }

        let (primitive, node) = tensor.into_parts();
        match SumBackward.prepare::<C>([node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let out = B::replica_sum(primitive, link.clone());
                prep.finish(link, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::replica_sum(primitive, link)),
        }
    }
}

/// [`ReplicaSumBackend::replica_sum`] on a tensor.
pub fn replica_sum<const D: usize>(x: Tensor<D>, link: SumLink) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as ReplicaSumBackend>::replica_sum(
        x.into_dispatch(),
        link,
    ))
}
