use burn::module::{Module, Param};
use burn::tensor::Tensor;

use crate::nn::{Conv2d, LayerNorm, Linear};

/// The forward function of a plugin adapter: `(module, x: B×N×C, (H, W), training) -> B×N×C`.
pub type PluginForward = fn(&PluginAdapter, Tensor<3>, (usize, usize), bool) -> Tensor<3>;

/// An adapter module defined outside this crate.
///
/// burn's `Module` is not object-safe, so a plugin cannot hand the backbone a boxed module of
/// its own type. Instead a plugin composes its adapter from this crate's layers (any number of
/// linears, norms, convs and free parameter vectors) and supplies the forward function; the
/// parameters then live under `my_module_{1,2}.{linears,norms,convs,params}.<i>.*`, are saved,
/// loaded, frozen and optimised like every built-in adapter's.
#[derive(Module, Debug)]
pub struct PluginAdapter {
    pub linears: Vec<Linear>,
    pub norms: Vec<LayerNorm>,
    pub convs: Vec<Conv2d>,
    pub params: Vec<Param<Tensor<1>>>,
    #[module(skip)]
    forward_fn: PluginForward,
}

impl PluginAdapter {
    pub fn new(
        linears: Vec<Linear>,
        norms: Vec<LayerNorm>,
        convs: Vec<Conv2d>,
        params: Vec<Param<Tensor<1>>>,
        forward_fn: PluginForward,
    ) -> Self {
        Self {
            linears,
            norms,
            convs,
            params,
            forward_fn,
        }
    }

    pub fn forward(&self, x: Tensor<3>, hw: (usize, usize), training: bool) -> Tensor<3> {
        (self.forward_fn)(self, x, hw, training)
    }
}
