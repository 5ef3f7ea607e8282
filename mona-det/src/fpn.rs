//! mmdet's `FPN` neck: 1×1 lateral convs, nearest top-down fusion to the exact lateral size,
//! 3×3 output convs, extra levels by stride-2 convs (`add_extra_convs`) or `max_pool2d(1, 2)`.
//! Parameter names are mmdet's (`lateral_convs.i.conv.weight`, `fpn_convs.i.conv.bias`).

use burn::module::Module;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use mona_core::nn::{Conv2d, init};
use mona_core::ops::resize::{ResizeMode, resize};
use serde::Deserialize;

/// `add_extra_convs`: `false`, `true` (= `on_input`) or a source name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ExtraConvs {
    Flag(bool),
    Source(ExtraSource),
}

/// Where the first extra conv reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExtraSource {
    OnInput,
    OnLateral,
    OnOutput,
}

impl ExtraConvs {
    fn source(self) -> Option<ExtraSource> {
        match self {
            ExtraConvs::Flag(false) => None,
            ExtraConvs::Flag(true) => Some(ExtraSource::OnInput),
            ExtraConvs::Source(s) => Some(s),
        }
    }
}

/// The `neck` config of mmdet (`type = "FPN"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FpnConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub in_channels: Vec<usize>,
    pub out_channels: usize,
    pub num_outs: usize,
    #[serde(default)]
    pub start_level: usize,
    #[serde(default = "minus_one")]
    pub end_level: i64,
    #[serde(default = "no_extra")]
    pub add_extra_convs: ExtraConvs,
    #[serde(default)]
    pub relu_before_extra_convs: bool,
    #[serde(default)]
    pub no_norm_on_lateral: bool,
}

fn minus_one() -> i64 {
    -1
}
fn no_extra() -> ExtraConvs {
    ExtraConvs::Flag(false)
}

/// Why an FPN config cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FpnError {
    #[error("neck: start_level {start} / end_level {end} do not fit {n} inputs")]
    Levels { start: usize, end: i64, n: usize },
    #[error("neck: num_outs {num_outs} is below the {used} used levels")]
    NumOuts { num_outs: usize, used: usize },
}

/// mmdet's `ConvModule` without norm or activation (an FPN conv): the conv under `conv`.
#[derive(Module, Debug)]
pub struct ConvModule {
    pub conv: Conv2d,
}

impl ConvModule {
    /// A conv with xavier-uniform weight and zero bias (mmdet's FPN / head init).
    pub fn xavier(c_in: usize, c_out: usize, k: usize, stride: usize, device: &Device) -> Self {
        let mut conv = Conv2d::torch_default(c_in, c_out, k, stride, k / 2, 1, true, device);
        let bound = (6.0 / ((c_in + c_out) * k * k) as f64).sqrt();
        conv.weight = init::uniform([c_out, c_in, k, k], bound, device);
        conv.bias = Some(init::constant([c_out], 0.0, device));
        Self { conv }
    }

    /// A conv with `N(0, std²)` weight and constant bias (mmdet's `normal_init`).
    pub fn normal(c_in: usize, c_out: usize, std: f64, bias: f64, device: &Device) -> Self {
        let mut conv = Conv2d::torch_default(c_in, c_out, 3, 1, 1, 1, true, device);
        conv.weight = init::normal([c_out, c_in, 3, 3], std, device);
        conv.bias = Some(init::constant([c_out], bias, device));
        Self { conv }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }
}

/// The FPN neck.
#[derive(Module, Debug)]
pub struct Fpn {
    pub lateral_convs: Vec<ConvModule>,
    pub fpn_convs: Vec<ConvModule>,
    start_level: usize,
    end_level: usize,
    num_outs: usize,
    /// 0 none, 1 on_input, 2 on_lateral, 3 on_output.
    extra_source: usize,
    relu_before_extra: bool,
}

impl Fpn {
    pub fn new(cfg: &FpnConfig, device: &Device) -> Result<Self, FpnError> {
        let n = cfg.in_channels.len();
        let end = if cfg.end_level == -1 {
            n
        } else if cfg.end_level >= 0 && (cfg.end_level as usize) < n {
            cfg.end_level as usize + 1
        } else {
            return Err(FpnError::Levels {
                start: cfg.start_level,
                end: cfg.end_level,
                n,
            });
        };
        if cfg.start_level >= end {
            return Err(FpnError::Levels {
                start: cfg.start_level,
                end: cfg.end_level,
                n,
            });
        }
        let used = end - cfg.start_level;
        if cfg.num_outs < used {
            return Err(FpnError::NumOuts {
                num_outs: cfg.num_outs,
                used,
            });
        }
        let out = cfg.out_channels;
        let mut lateral_convs = Vec::new();
        let mut fpn_convs = Vec::new();
        for &c in &cfg.in_channels[cfg.start_level..end] {
            lateral_convs.push(ConvModule::xavier(c, out, 1, 1, device));
            fpn_convs.push(ConvModule::xavier(out, out, 3, 1, device));
        }
        let source = cfg.add_extra_convs.source();
        if let Some(s) = source {
            for i in 0..cfg.num_outs - used {
                let c_in = if i == 0 && s == ExtraSource::OnInput {
                    cfg.in_channels[end - 1]
                } else {
                    out
                };
                fpn_convs.push(ConvModule::xavier(c_in, out, 3, 2, device));
            }
        }
        Ok(Self {
            lateral_convs,
            fpn_convs,
            start_level: cfg.start_level,
            end_level: end,
            num_outs: cfg.num_outs,
            extra_source: match source {
                None => 0,
                Some(ExtraSource::OnInput) => 1,
                Some(ExtraSource::OnLateral) => 2,
                Some(ExtraSource::OnOutput) => 3,
            },
            relu_before_extra: cfg.relu_before_extra_convs,
        })
    }

    /// Outputs `P_{start} .. ` (`num_outs` maps) of the backbone maps `inputs`.
    pub fn forward(&self, inputs: &[Tensor<4>]) -> Vec<Tensor<4>> {
        let mut laterals: Vec<Tensor<4>> = self
            .lateral_convs
            .iter()
            .enumerate()
            .map(|(i, conv)| conv.forward(inputs[i + self.start_level].clone()))
            .collect();
        let used = laterals.len();
        for i in (1..used).rev() {
            let [_, _, h, w] = laterals[i - 1].dims();
            let up = resize(laterals[i].clone(), [h, w], ResizeMode::Nearest);
            laterals[i - 1] = laterals[i - 1].clone() + up;
        }
        let mut outs: Vec<Tensor<4>> = (0..used)
            .map(|i| self.fpn_convs[i].forward(laterals[i].clone()))
            .collect();
        if self.extra_source == 0 {
            while outs.len() < self.num_outs {
                let last = outs[outs.len() - 1].clone();
                outs.push(max_pool2d(
                    last,
                    MaxPoolOptions::new([1, 1]).with_stride([2, 2]),
                ));
            }
        } else if outs.len() < self.num_outs {
            let source = match self.extra_source {
                1 => inputs[self.end_level - 1].clone(),
                2 => laterals[used - 1].clone(),
                _ => outs[used - 1].clone(),
            };
            outs.push(self.fpn_convs[used].forward(source));
            for i in used + 1..self.num_outs {
                let mut last = outs[outs.len() - 1].clone();
                if self.relu_before_extra {
                    last = burn::tensor::activation::relu(last);
                }
                outs.push(self.fpn_convs[i].forward(last));
            }
        }
        outs
    }
}
