use burn::module::Module;
use burn::tensor::Tensor;

use crate::random::Draw;

/// Stochastic depth (timm `DropPath`): per sample, keep with probability 1 − p and scale by
/// 1/(1 − p). Identity at p = 0 and outside training. A sample's draw depends on its index
/// in the whole batch, not on the shard that holds it ([`crate::random`]).
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
        let [b, _, _] = x.dims();
        let device = x.device();
        let mask = Draw::next(b, &device).mask([b, 1, 1], 1.0 - self.prob, &device);
        x * mask
    }
}
