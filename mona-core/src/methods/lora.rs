#![allow(non_snake_case)] // `lora_A` / `lora_B` are the official state-dict names.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::nn::{Linear, init};

/// LoRA settings of `attn.qkv` (loralib `MergedLinear`).
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSpec {
    pub r: usize,
    pub alpha: f64,
    /// Which of q, k, v get a low-rank update; the official code uses `[true, false, true]`.
    pub enable: [bool; 3],
}

/// `attn.qkv` as loralib's `MergedLinear`: the pretrained `weight` `[3C, C]` and `bias`, plus
/// `lora_A` `[r·E, C]` and `lora_B` `[C·E, r]` for the E enabled thirds. The update of an
/// enabled third is `(x·A_iᵀ)·B_iᵀ · alpha/r`; disabled thirds get none.
#[derive(Module, Debug)]
#[allow(non_snake_case)]
pub struct LoraLinear {
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub lora_A: Option<Param<Tensor<2>>>,
    pub lora_B: Option<Param<Tensor<2>>>,
    r: usize,
    scaling: f64,
    enable: [bool; 3],
    /// Whether the update has been folded into `weight` (inference form).
    merged: bool,
}

impl LoraLinear {
    /// A plain qkv Linear (no LoRA).
    pub fn plain(linear: Linear) -> Self {
        Self {
            weight: linear.weight,
            bias: linear.bias,
            lora_A: None,
            lora_B: None,
            r: 0,
            scaling: 0.0,
            enable: [false; 3],
            merged: false,
        }
    }

    /// qkv with LoRA: lora_A kaiming-uniform (a=√5, bound 1/√C), lora_B zeros (loralib).
    pub fn with_lora(linear: Linear, spec: &LoraSpec, device: &Device) -> Self {
        let c = linear.d_in();
        let parts = spec.enable.iter().filter(|e| **e).count();
        let third = linear.d_out() / 3;
        Self {
            lora_A: Some(init::uniform(
                [spec.r * parts, c],
                init::kaiming_uniform_bound(c),
                device,
            )),
            lora_B: Some(init::constant([third * parts, spec.r], 0.0, device)),
            weight: linear.weight,
            bias: linear.bias,
            r: spec.r,
            scaling: spec.alpha / spec.r as f64,
            enable: spec.enable,
            merged: false,
        }
    }

    pub fn has_lora(&self) -> bool {
        self.lora_A.is_some()
    }

    pub fn is_merged(&self) -> bool {
        self.merged
    }

    /// The low-rank update as a `[3C, C]` matrix (zeros in disabled thirds), times the scaling.
    fn delta_weight(&self) -> Option<Tensor<2>> {
        let (a, b) = (self.lora_A.as_ref()?.val(), self.lora_B.as_ref()?.val());
        Some(self.block_b(b).matmul(a))
    }

    /// Folds the update into `weight` (loralib's eval-mode merge). Outputs are unchanged up
    /// to float rounding; the LoRA factors are kept so [`Self::unmerged`] can undo it.
    pub fn merged(mut self) -> Self {
        if self.merged {
            return self;
        }
        if let Some(delta) = self.delta_weight() {
            let w = self.weight.val() + delta;
            self.weight = Param::from_tensor(w.detach()).set_require_grad(false);
            self.merged = true;
        }
        self
    }

    /// Removes a merged update from `weight` again (loralib's train-mode unmerge).
    pub fn unmerged(mut self) -> Self {
        if !self.merged {
            return self;
        }
        if let Some(delta) = self.delta_weight() {
            let w = self.weight.val() - delta;
            self.weight = Param::from_tensor(w.detach()).set_require_grad(false);
            self.merged = false;
        }
        self
    }

    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let base = crate::nn::linear(
            x.clone(),
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
        );
        if self.merged {
            return base;
        }
        let (Some(a), Some(b)) = (self.lora_A.as_ref(), self.lora_B.as_ref()) else {
            return base;
        };
        let after_a = crate::nn::linear(x, a.val(), None);
        base + crate::nn::linear(after_a, self.block_b(b.val()), None)
    }

    /// `lora_B` as one `[3C, r·E]` matrix, times the scaling: the `p`-th enabled third holds
    /// `B_p` in columns `p·r .. (p+1)·r` and zeros elsewhere, and a disabled third is all
    /// zeros. `(x·Aᵀ)·B_fullᵀ` is then every third's update side by side, in one product
    /// instead of a product per third, a concatenation and a scaling pass.
    fn block_b(&self, b: Tensor<2>) -> Tensor<2> {
        let third = self.weight.shape().dims::<2>()[0] / 3;
        let width = self.enable.iter().filter(|e| **e).count() * self.r;
        let device = b.device();
        let mut rows = Vec::with_capacity(3);
        let mut part = 0;
        for enabled in self.enable {
            if !enabled {
                rows.push(Tensor::zeros([third, width], &device));
                continue;
            }
            let (before, after) = (part * self.r, width - (part + 1) * self.r);
            let mut cols = Vec::with_capacity(3);
            if before > 0 {
                cols.push(Tensor::zeros([third, before], &device));
            }
            cols.push(b.clone().narrow(0, part * third, third));
            if after > 0 {
                cols.push(Tensor::zeros([third, after], &device));
            }
            rows.push(Tensor::cat(cols, 1));
            part += 1;
        }
        Tensor::cat(rows, 0) * self.scaling
    }
}
