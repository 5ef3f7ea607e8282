use burn::module::Module;
use burn::tensor::Tensor;

use crate::random::Draw;

/// Inverted dropout, active only while training on an autodiff device (as burn's own).
///
/// Kept as a plain probability so that modules built from configs need no training flag:
/// "training" is the device being an autodiff device, which is how the runner trains and how
/// inference (`valid()`) does not.
#[derive(Module, Debug)]
pub struct Dropout {
    prob: f64,
}

impl Dropout {
    pub fn new(prob: f64) -> Self {
        Self { prob }
    }

    pub fn prob(&self) -> f64 {
        self.prob
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>, training: bool) -> Tensor<D> {
        if !training || self.prob == 0.0 {
            return x;
        }
        bernoulli_dropout(x, self.prob)
    }

    /// `self.forward(gelu(x), training)`, as one fused op where the device allows
    /// ([`super::gelu_dropout`]).
    pub fn forward_gelu<const D: usize>(&self, x: Tensor<D>, training: bool) -> Tensor<D> {
        super::gelu_dropout(x, self.prob, training)
    }
}

/// `x · mask / (1 − p)` with a Bernoulli(1 − p) mask from the next draw of the thread's
/// [`DrawScope`](crate::random::DrawScope) (the same mask on every backend, whatever shard of
/// the batch `x` holds).
pub(super) fn bernoulli_dropout<const D: usize>(x: Tensor<D>, p: f64) -> Tensor<D> {
    let device = x.device();
    let shape: [usize; D] = x.dims();
    let draw = Draw::next(shape.iter().product(), &device);
    x * draw.mask(shape, 1.0 - p, &device)
}
