use burn::module::Module;
use burn::tensor::{Distribution, Tensor};

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

    pub fn forward<const D: usize>(&self, x: Tensor<D>, training: bool) -> Tensor<D> {
        if !training || self.prob == 0.0 {
            return x;
        }
        let keep = 1.0 - self.prob;
        let mask = Tensor::<D>::random(x.shape(), Distribution::Bernoulli(keep), &x.device());
        x * mask / keep
    }
}
