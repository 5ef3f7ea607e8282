//! Reading and making burn-flex tensors for the fused CPU kernels.

use burn::backend::Backend;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Elements per parallel task of an element-wise kernel: large enough that rayon's
/// per-task cost vanishes, small enough that both cores get work on Mona's smallest maps.
pub const CHUNK: usize = 8192;

/// A tensor's values in row-major order, as one contiguous f32 buffer (copied only if the
/// tensor is a strided view).
pub struct Values {
    tensor: FlexTensor,
}

impl Values {
    pub fn of(tensor: &FlexTensor) -> Self {
        assert_eq!(
            tensor.dtype(),
            DType::F32,
            "the fused kernels take f32 tensors"
        );
        Self {
            tensor: tensor.to_contiguous(),
        }
    }

    pub fn as_slice(&self) -> &[f32] {
        let n = self.tensor.layout().num_elements();
        &self.tensor.storage::<f32>()[..n]
    }

    pub fn dims(&self) -> Vec<usize> {
        self.tensor.layout().shape().to_vec()
    }
}

/// A new contiguous f32 tensor.
pub fn tensor(values: Vec<f32>, dims: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, dims))
}

/// A zero-filled buffer of `len` floats for a kernel's output, zeroed by rayon's threads.
///
/// `vec![0.0; len]` of a buffer the allocator reuses is a `memset` on the calling thread,
/// while the threads that will write the buffer wait; here each thread zeroes (and first
/// touches) chunks of it. Small buffers are zeroed in place: waking the threads would
/// cost more.
pub fn zeroed(len: usize) -> Vec<f32> {
    if len < 8 * CHUNK {
        return vec![0f32; len];
    }
    let mut out = Vec::<f32>::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(CHUNK)
        .for_each(|c| c.fill(MaybeUninit::new(0.0)));
    // SAFETY: the chunks cover the first `len` elements, and each was written above.
    unsafe { out.set_len(len) };
    out
}

/// The element-wise sum of per-task partial sums, added in task order: parallel kernels
/// that reduce (weight and bias gradients) split their work in tasks of a fixed size and
/// add the tasks' partials this way, so the result does not depend on the thread count.
pub fn sum_partials(partials: &[Vec<f32>], len: usize) -> Vec<f32> {
    let mut total = vec![0f32; len];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += *v;
        }
    }
    total
}

/// Registers each gradient whose node is tracked (`Some`) in a backward step.
pub fn register_tracked<B: Backend, const N: usize>(
    grads: &mut Gradients,
    gradients: [(Option<NodeId>, FloatTensor<B>); N],
) {
    for (node, grad) in gradients {
        if let Some(id) = node {
            grads.register::<B>(id, grad);
        }
    }
}
