use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::nn::{Dropout, Linear};

/// The bottleneck adapter of the Adapter and AdaptFormer baselines:
/// `h = project2(Dropout(GELU(project1(x))))`, then
/// - Adapter: `x + h` (inner skip, scale 1);
/// - AdaptFormer: `scale · h` with scale 0.1 and no skip.
#[derive(Module, Debug)]
pub struct BottleneckAdapter {
    pub project1: Linear,
    pub project2: Linear,
    pub dropout: Dropout,
    scale: f64,
    skip: bool,
}

impl BottleneckAdapter {
    pub fn new(
        dim: usize,
        bottleneck: usize,
        dropout: f64,
        scale: f64,
        skip: bool,
        device: &Device,
    ) -> Self {
        Self {
            project1: Linear::trunc_normal(dim, bottleneck, true, device),
            project2: Linear::trunc_normal(bottleneck, dim, true, device),
            dropout: Dropout::new(dropout),
            scale,
            skip,
        }
    }

    pub fn forward(&self, x: Tensor<3>, training: bool) -> Tensor<3> {
        let h = self.project1.forward(x.clone());
        let h = self.dropout.forward_gelu(h, training);
        let h = self.project2.forward(h);
        let h = if self.scale == 1.0 { h } else { h * self.scale };
        if self.skip { x + h } else { h }
    }
}
