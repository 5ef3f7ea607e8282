use burn::module::Module;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

use crate::nn::{Conv2d, LayerNorm, Linear};

/// Patch embedding: right/bottom zero padding to a multiple of the patch size, a strided
/// conv, then LayerNorm over channels.
#[derive(Module, Debug)]
pub struct PatchEmbed {
    pub proj: Conv2d,
    pub norm: Option<LayerNorm>,
    patch_size: usize,
}

impl PatchEmbed {
    /// `proj` keeps PyTorch's default Conv2d init (the official `init_weights` skips convs).
    pub fn new(
        in_chans: usize,
        embed_dim: usize,
        patch_size: usize,
        norm: bool,
        device: &Device,
    ) -> Self {
        Self {
            proj: Conv2d::torch_default(
                in_chans, embed_dim, patch_size, patch_size, 0, 1, true, device,
            ),
            norm: norm.then(|| LayerNorm::new(embed_dim, device)),
            patch_size,
        }
    }

    /// `(B, 3, H, W)` → tokens `(B, Wh·Ww, C)` and the grid `(Wh, Ww)`.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<3>, (usize, usize)) {
        let [_, _, h, w] = x.dims();
        let p = self.patch_size;
        let (pad_b, pad_r) = ((p - h % p) % p, (p - w % p) % p);
        let x = if pad_b > 0 || pad_r > 0 {
            x.pad(
                [(0, 0), (0, 0), (0, pad_b), (0, pad_r)],
                PadMode::Constant(0.0),
            )
        } else {
            x
        };
        let x = self.proj.forward(x);
        let [b, c, wh, ww] = x.dims();
        let tokens = x.reshape([b, c, wh * ww]).swap_dims(1, 2);
        let tokens = match &self.norm {
            Some(norm) => norm.forward(tokens),
            None => tokens,
        };
        (tokens, (wh, ww))
    }
}

/// Patch merging: pad odd sizes, concatenate the 2×2 neighbours in the order
/// x0 = (0,0), x1 = (1,0), x2 = (0,1), x3 = (1,1) (row, col), LayerNorm(4C), Linear(4C → 2C,
/// no bias).
#[derive(Module, Debug)]
pub struct PatchMerging {
    pub norm: LayerNorm,
    pub reduction: Linear,
}

impl PatchMerging {
    pub fn new(dim: usize, device: &Device) -> Self {
        Self {
            norm: LayerNorm::new(4 * dim, device),
            reduction: Linear::trunc_normal(4 * dim, 2 * dim, false, device),
        }
    }

    /// `(B, H·W, C)` → `(B, ⌈H/2⌉·⌈W/2⌉, 2C)`.
    pub fn forward(&self, x: Tensor<3>, hw: (usize, usize)) -> Tensor<3> {
        let [b, _, c] = x.dims();
        let (h, w) = hw;
        let x = x.reshape([b, h, w, c]);
        let x = if h % 2 == 1 || w % 2 == 1 {
            x.pad(
                [(0, 0), (0, h % 2), (0, w % 2), (0, 0)],
                PadMode::Constant(0.0),
            )
        } else {
            x
        };
        let (h2, w2) = (h.div_ceil(2), w.div_ceil(2));
        // (B, h2, r, w2, q, C) → (B, h2, w2, q, r, C): channel blocks ordered q·2 + r, i.e.
        // (r,q) = (0,0), (1,0), (0,1), (1,1) = x0, x1, x2, x3.
        let x = x
            .reshape([b, h2, 2, w2, 2, c])
            .permute([0, 1, 3, 4, 2, 5])
            .reshape([b, h2 * w2, 4 * c]);
        self.reduction.forward(self.norm.forward(x))
    }
}
