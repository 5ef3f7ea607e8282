use burn::module::Module;
use burn::tensor::{Distribution, Tensor};

/// Stochastic depth (timm `DropPath`): per sample, keep with probability 1 − p and scale by
/// 1/(1 − p). Identity at p = 0 and outside training.
#[derive(Module, Debug)]
pub struct DropPath {
    prob: f64,
}

impl DropPath {
    pub fn new(prob: f64) -> Self {
        Self { prob }
    }

    pub fn prob(&self) -> f64 {
        self.prob
    }

    pub fn forward(&self, x: Tensor<3>, training: bool) -> Tensor<3> {
        if !training || self.prob == 0.0 {
            return x;
        }
        let keep = 1.0 - self.prob;
        let [b, _, _] = x.dims();
        let mask = Tensor::<3>::random([b, 1, 1], Distribution::Bernoulli(keep), &x.device());
        x * mask / keep
    }
}
