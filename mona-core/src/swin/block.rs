use burn::module::Module;
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

use super::attention::WindowAttention;
use super::windows::{window_partition, window_reverse};
use crate::fused::{self, RowMap};
use crate::methods::{AdapterModule, BlockAdapters, LoraSpec, Placement};
use crate::nn::{DropPath, Dropout, LayerNorm, Linear};

/// `fc1 → GELU → drop → fc2 → drop`.
#[derive(Module, Debug)]
pub struct Mlp {
    pub fc1: Linear,
    pub fc2: Linear,
    pub drop: Dropout,
}

impl Mlp {
    pub fn new(dim: usize, hidden: usize, drop: f64, device: &Device) -> Self {
        Self {
            fc1: Linear::trunc_normal(dim, hidden, true, device),
            fc2: Linear::trunc_normal(hidden, dim, true, device),
            drop: Dropout::new(drop),
        }
    }

    pub fn forward(&self, x: Tensor<3>, training: bool) -> Tensor<3> {
        let x = self.drop.forward_gelu(self.fc1.forward(x), training);
        self.drop.forward(self.fc2.forward(x), training)
    }
}

/// Where the block's adapter slots act; not parameters, so skipped by the module derive.
#[derive(Debug, Clone, Copy, Default)]
struct Placements {
    slot1: Option<Placement>,
    slot2: Option<Placement>,
}

/// One Swin block with the method's adapters.
#[derive(Module, Debug)]
pub struct SwinBlock {
    pub norm1: LayerNorm,
    pub attn: WindowAttention,
    pub drop_path: DropPath,
    pub norm2: LayerNorm,
    pub mlp: Mlp,
    pub my_module_1: Option<AdapterModule>,
    pub my_module_2: Option<AdapterModule>,
    shift_size: usize,
    #[module(skip)]
    placements: Placements,
}

/// Construction arguments of a block that do not come from the method.
pub struct BlockArgs {
    pub dim: usize,
    pub num_heads: usize,
    pub window_size: usize,
    pub shift_size: usize,
    pub mlp_ratio: f64,
    pub qkv_bias: bool,
    pub qk_scale: Option<f64>,
    pub drop: f64,
    pub attn_drop: f64,
    pub drop_path: f64,
}

impl SwinBlock {
    pub fn new(
        args: &BlockArgs,
        adapters: BlockAdapters,
        lora: Option<&LoraSpec>,
        device: &Device,
    ) -> Self {
        let hidden = (args.dim as f64 * args.mlp_ratio) as usize;
        let (p1, m1) = adapters.slot1.map(|s| (s.placement, s.module)).unzip();
        let (p2, m2) = adapters.slot2.map(|s| (s.placement, s.module)).unzip();
        Self {
            norm1: LayerNorm::new(args.dim, device),
            attn: WindowAttention::new(
                args.dim,
                args.window_size,
                args.num_heads,
                args.qkv_bias,
                args.qk_scale,
                args.attn_drop,
                args.drop,
                lora,
                device,
            ),
            drop_path: DropPath::new(args.drop_path),
            norm2: LayerNorm::new(args.dim, device),
            mlp: Mlp::new(args.dim, hidden, args.drop, device),
            my_module_1: m1,
            my_module_2: m2,
            shift_size: args.shift_size,
            placements: Placements {
                slot1: p1,
                slot2: p2,
            },
        }
    }

    pub fn shift_size(&self) -> usize {
        self.shift_size
    }

    /// Applies every adapter slot placed at `at` (slot 1 first).
    fn adapt(&self, at: Placement, x: Tensor<3>, hw: (usize, usize), training: bool) -> Tensor<3> {
        let mut x = x;
        for (placement, module) in [
            (self.placements.slot1, &self.my_module_1),
            (self.placements.slot2, &self.my_module_2),
        ] {
            if let (Some(p), Some(m)) = (placement, module)
                && p == at
            {
                x = m.forward(x, hw, training);
            }
        }
        x
    }

    fn parallel(&self, x: Tensor<3>, hw: (usize, usize), training: bool) -> Option<Tensor<3>> {
        [
            (self.placements.slot1, &self.my_module_1),
            (self.placements.slot2, &self.my_module_2),
        ]
        .into_iter()
        .filter_map(|(p, m)| match (p, m) {
            (Some(Placement::ParallelMlp), Some(m)) => Some(m.forward(x.clone(), hw, training)),
            _ => None,
        })
        .reduce(|a, b| a + b)
    }

    /// Window attention on the normalised tokens `y` `(B, H·W, C)`: zero-pad the grid to
    /// window multiples, roll it by `−shift`, partition it into windows, attend, and undo
    /// the three. On the flex device and on cubecl devices the three steps are one gather
    /// of token rows each way ([`fused::gather_rows`]); elsewhere they are pad, roll and
    /// permute.
    fn shifted_window_attention(
        &self,
        y: Tensor<3>,
        hw: (usize, usize),
        mask: Option<Tensor<3>>,
        training: bool,
    ) -> Tensor<3> {
        let [b, l, c] = y.dims();
        let (h, w) = hw;
        let ws = self.attn.window_size();
        let s = self.shift_size;
        let mask = if s > 0 { mask } else { None };
        if fused::enabled_with_cube(&y) {
            let map = RowMap::window_partition(h, w, ws, s);
            let padded = map.rows_out();
            let windows =
                fused::gather_rows(y, map.clone()).reshape([b * padded / (ws * ws), ws * ws, c]);
            let attn = self.attn.forward(windows, mask, training);
            return fused::gather_rows(attn.reshape([b, padded, c]), map.inverted());
        }
        let y = y.reshape([b, h, w, c]);
        let (pad_b, pad_r) = ((ws - h % ws) % ws, (ws - w % ws) % ws);
        let y = if pad_b > 0 || pad_r > 0 {
            y.pad(
                [(0, 0), (0, pad_b), (0, pad_r), (0, 0)],
                PadMode::Constant(0.0),
            )
        } else {
            y
        };
        let (hp, wp) = (h + pad_b, w + pad_r);
        let s = s as i64;
        let y = if s > 0 { y.roll(&[-s, -s], &[1, 2]) } else { y };
        let windows = window_partition(y, ws);
        let attn = self.attn.forward(windows, mask, training);
        let y = window_reverse(attn, ws, hp, wp);
        let y = if s > 0 { y.roll(&[s, s], &[1, 2]) } else { y };
        let y = if pad_b > 0 || pad_r > 0 {
            y.slice([0..b, 0..h, 0..w, 0..c])
        } else {
            y
        };
        y.reshape([b, l, c])
    }

    /// `x`: `(B, H·W, C)`; `mask`: the stage's shifted-window mask (used if shifted).
    pub fn forward(
        &self,
        x: Tensor<3>,
        hw: (usize, usize),
        mask: Option<Tensor<3>>,
        training: bool,
    ) -> Tensor<3> {
        let [_, l, _] = x.dims();
        let (h, w) = hw;
        assert_eq!(l, h * w, "Swin block: {l} tokens for a {h}x{w} grid");
        let shortcut = x.clone();
        let y = self.shifted_window_attention(self.norm1.forward(x), hw, mask, training);
        let a = self.adapt(Placement::AttnBranch, y, hw, training);
        let x = shortcut + self.drop_path.forward(a, training);
        let x = self.adapt(Placement::AfterAttnResidual, x, hw, training);

        let identity = x.clone();
        let m = self.mlp.forward(self.norm2.forward(x), training);
        let m = self.adapt(Placement::MlpBranch, m, hw, training);
        let mut x = identity.clone() + self.drop_path.forward(m, training);
        if let Some(p) = self.parallel(identity, hw, training) {
            x = x + p;
        }
        self.adapt(Placement::AfterMlpResidual, x, hw, training)
    }
}
