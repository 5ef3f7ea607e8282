use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::fused;
use crate::methods::{LoraLinear, LoraSpec};
use crate::nn::{Dropout, Linear, amp, init};

/// Window multi-head self-attention with relative position bias.
#[derive(Module, Debug)]
pub struct WindowAttention {
    /// `((2w−1)², heads)`, trunc-normal std 0.02.
    pub relative_position_bias_table: Param<Tensor<2>>,
    pub qkv: LoraLinear,
    pub proj: Linear,
    pub attn_drop: Dropout,
    pub proj_drop: Dropout,
    window_size: usize,
    num_heads: usize,
    scale: f64,
    /// The official `relative_position_index` buffer, recomputed (never loaded).
    #[module(skip)]
    index: Vec<i64>,
}

/// The official `relative_position_index` for window `w`, flattened `(w², w²)` row-major:
/// `((i_p − i_q) + w − 1)·(2w − 1) + (j_p − j_q) + w − 1`.
pub fn relative_position_index(w: usize) -> Vec<i64> {
    let n = w * w;
    let w = w as i64;
    let mut idx = Vec::with_capacity(n * n);
    for p in 0..n as i64 {
        for q in 0..n as i64 {
            let (ip, jp) = (p / w, p % w);
            let (iq, jq) = (q / w, q % w);
            idx.push((ip - iq + w - 1) * (2 * w - 1) + (jp - jq + w - 1));
        }
    }
    idx
}

impl WindowAttention {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dim: usize,
        window_size: usize,
        num_heads: usize,
        qkv_bias: bool,
        qk_scale: Option<f64>,
        attn_drop: f64,
        proj_drop: f64,
        lora: Option<&LoraSpec>,
        device: &Device,
    ) -> Self {
        let head_dim = dim / num_heads;
        let table_len = (2 * window_size - 1) * (2 * window_size - 1);
        let qkv = Linear::trunc_normal(dim, 3 * dim, qkv_bias, device);
        Self {
            relative_position_bias_table: init::trunc_normal([table_len, num_heads], 0.02, device),
            qkv: match lora {
                Some(spec) => LoraLinear::with_lora(qkv, spec, device),
                None => LoraLinear::plain(qkv),
            },
            proj: Linear::trunc_normal(dim, dim, true, device),
            attn_drop: Dropout::new(attn_drop),
            proj_drop: Dropout::new(proj_drop),
            window_size,
            num_heads,
            scale: qk_scale.unwrap_or((head_dim as f64).powf(-0.5)),
            index: relative_position_index(window_size),
        }
    }

    pub fn window_size(&self) -> usize {
        self.window_size
    }

    /// The bias `(heads, N, N)` gathered from the table.
    pub fn relative_position_bias(&self) -> Tensor<3> {
        let table = self.relative_position_bias_table.val();
        let n = self.window_size * self.window_size;
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(self.index.clone(), [n * n]),
            &table.device(),
        );
        table
            .select(0, idx)
            .reshape([n, n, self.num_heads])
            .permute([2, 0, 1])
    }

    /// `x`: `(B·nW, N, C)`; `mask`: `(nW, N, N)` for shifted blocks.
    pub fn forward(&self, x: Tensor<3>, mask: Option<Tensor<3>>, training: bool) -> Tensor<3> {
        let [bn, n, c] = x.dims();
        let h = self.num_heads;
        let hd = c / h;
        let qkv = self.qkv.forward(x);
        let attn_dropout = training && self.attn_drop.prob() > 0.0;
        if fused::enabled(&qkv)
            && amp::autocast().is_none()
            && !attn_dropout
            && hd == fused::HEAD_DIM
            && n <= fused::MAX_TOKENS
        {
            let out =
                fused::window_attention(qkv, self.relative_position_bias(), mask, h, self.scale);
            return self.proj_drop.forward(self.proj.forward(out), training);
        }
        let qkv = qkv.reshape([bn, n, 3, h, hd]).permute([2, 0, 3, 1, 4]);
        let q = qkv.clone().narrow(0, 0, 1).reshape([bn, h, n, hd]) * self.scale;
        let k = qkv.clone().narrow(0, 1, 1).reshape([bn, h, n, hd]);
        let v = qkv.narrow(0, 2, 1).reshape([bn, h, n, hd]);
        let mut attn = amp::matmul(q, k.swap_dims(2, 3));
        attn = attn + self.relative_position_bias().unsqueeze::<4>();
        if let Some(mask) = mask {
            let nw = mask.dims()[0];
            attn = (attn.reshape([bn / nw, nw, h, n, n]) + mask.reshape([1, nw, 1, n, n]))
                .reshape([bn, h, n, n]);
        }
        let attn = self.attn_drop.forward(softmax(attn, 3), training);
        let out = amp::matmul(attn, v).swap_dims(1, 2).reshape([bn, n, c]);
        self.proj_drop.forward(self.proj.forward(out), training)
    }
}
