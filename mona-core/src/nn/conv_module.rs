//! mmcv's `ConvModule` in its conv → BN → ReLU form, shared by the mmseg decode heads
//! (`mona-seg`) and the mmdet box heads (`Shared4Conv1FCBBoxHead`, `mona-det`).

use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use super::{BatchNorm2d, BatchNormKind, Conv2d, init};

/// mmcv `ConvModule(c_in, c_out, k, padding=k//2, norm_cfg=BN|None, act_cfg=ReLU)`: the conv
/// has a bias only without a norm (mmcv's `bias='auto'`); parameter names `conv.weight`,
/// `conv.bias`, `bn.weight`, `bn.bias`, `bn.running_mean`, `bn.running_var`.
///
/// Init is mmcv's `ConvModule.init_weights`: `kaiming_init(conv, a=0, nonlinearity='relu')`,
/// i.e. kaiming-normal with `mode='fan_out'` (std √(2 / (c_out·k²))), bias 0; BN weight 1,
/// bias 0. `norm` is the `norm_cfg`'s batch norm: `BN`, or `SyncBN`, whose statistics span
/// every data-parallel replica's batch (see [`BatchNorm2d`]).
#[derive(Module, Debug)]
pub struct ConvModule {
    pub conv: Conv2d,
    pub bn: Option<BatchNorm2d>,
}

impl ConvModule {
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        norm: Option<BatchNormKind>,
        device: &Device,
    ) -> Self {
        let with_bias = norm.is_none();
        let mut conv =
            Conv2d::torch_default(c_in, c_out, kernel, 1, kernel / 2, 1, with_bias, device);
        let fan_out = c_out * kernel * kernel;
        conv.weight = init::normal(
            [c_out, c_in, kernel, kernel],
            (2.0 / fan_out as f64).sqrt(),
            device,
        );
        if with_bias {
            conv.bias = Some(init::constant([c_out], 0.0, device));
        }
        Self {
            conv,
            bn: norm.map(|kind| BatchNorm2d::new(c_out, device).with_kind(kind)),
        }
    }

    /// conv → BN (batch statistics when `training`, running statistics otherwise) → ReLU.
    pub fn forward(&self, x: Tensor<4>, training: bool) -> Tensor<4> {
        let y = self.conv.forward(x);
        let y = match &self.bn {
            Some(bn) => bn.forward(y, training),
            None => y,
        };
        relu(y)
    }
}
