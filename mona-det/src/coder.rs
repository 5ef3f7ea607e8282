//! mmdet's `DeltaXYWHBBoxCoder` (no `+1` in widths): `encode` = `bbox2delta`,
//! `decode` = `delta2bbox` with the `wh_ratio_clip` clamp and optional clipping to the image.

use crate::ops::boxes::Box4;
use burn::tensor::{Tensor, TensorData};
use serde::Deserialize;

/// The `bbox_coder` config of mmdet (`type = "DeltaXYWHBBoxCoder"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeltaCoderConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default = "zeros")]
    pub target_means: [f64; 4],
    #[serde(default = "ones")]
    pub target_stds: [f64; 4],
    #[serde(default = "yes")]
    pub clip_border: bool,
}

fn zeros() -> [f64; 4] {
    [0.0; 4]
}
fn ones() -> [f64; 4] {
    [1.0; 4]
}
fn yes() -> bool {
    true
}

impl Default for DeltaCoderConfig {
    fn default() -> Self {
        Self {
            kind: None,
            target_means: zeros(),
            target_stds: ones(),
            clip_border: true,
        }
    }
}

/// mmdet's default `wh_ratio_clip` (16 / 1000).
pub const WH_RATIO_CLIP: f64 = 16.0 / 1000.0;

/// The coder.
#[derive(Debug, Clone, Default)]
pub struct DeltaXYWHBBoxCoder {
    pub cfg: DeltaCoderConfig,
}

impl DeltaXYWHBBoxCoder {
    pub fn new(cfg: DeltaCoderConfig) -> Self {
        Self { cfg }
    }

    /// `bbox2delta(proposal, gt)`, normalised by the means and stds (float32 like mmdet).
    pub fn encode(&self, p: &Box4, g: &Box4) -> [f32; 4] {
        let (px, py) = ((p[0] + p[2]) * 0.5, (p[1] + p[3]) * 0.5);
        let (pw, ph) = (p[2] - p[0], p[3] - p[1]);
        let (gx, gy) = ((g[0] + g[2]) * 0.5, (g[1] + g[3]) * 0.5);
        let (gw, gh) = (g[2] - g[0], g[3] - g[1]);
        let d = [
            (gx - px) / pw,
            (gy - py) / ph,
            (gw / pw).ln(),
            (gh / ph).ln(),
        ];
        std::array::from_fn(|k| {
            (d[k] - self.cfg.target_means[k] as f32) / self.cfg.target_stds[k] as f32
        })
    }

    /// `delta2bbox(roi, delta, max_shape = (H, W))` in f64.
    pub fn decode_f64(
        &self,
        p: &[f64; 4],
        d: &[f64; 4],
        max_shape: Option<(f64, f64)>,
    ) -> [f64; 4] {
        let d: [f64; 4] =
            std::array::from_fn(|k| d[k] * self.cfg.target_stds[k] + self.cfg.target_means[k]);
        let max_ratio = WH_RATIO_CLIP.ln().abs();
        let (dw, dh) = (
            d[2].clamp(-max_ratio, max_ratio),
            d[3].clamp(-max_ratio, max_ratio),
        );
        let (px, py) = ((p[0] + p[2]) * 0.5, (p[1] + p[3]) * 0.5);
        let (pw, ph) = (p[2] - p[0], p[3] - p[1]);
        let (gx, gy) = (px + pw * d[0], py + ph * d[1]);
        let (gw, gh) = (pw * dw.exp(), ph * dh.exp());
        let mut b = [gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5];
        if let (Some((h, w)), true) = (max_shape, self.cfg.clip_border) {
            b[0] = b[0].clamp(0.0, w);
            b[2] = b[2].clamp(0.0, w);
            b[1] = b[1].clamp(0.0, h);
            b[3] = b[3].clamp(0.0, h);
        }
        b
    }

    /// [`Self::decode_f64`] on f32 boxes.
    pub fn decode(&self, p: &Box4, d: &[f32; 4], max_shape: Option<(usize, usize)>) -> Box4 {
        let b = self.decode_f64(
            &p.map(f64::from),
            &d.map(f64::from),
            max_shape.map(|(h, w)| (h as f64, w as f64)),
        );
        b.map(|v| v as f32)
    }

    /// `delta2bbox` of class-specific rows: `deltas` is row-major `(n, 4·k)` (k boxes per
    /// row, e.g. one per class of a Cascade R-CNN box head) and every 4-block of row `i`
    /// decodes against `rois[i]`, as mmdet repeats the RoI per class. Returns `(n, 4·k)`.
    pub fn decode_rows(
        &self,
        rois: &[Box4],
        deltas: &[f32],
        max_shape: Option<(usize, usize)>,
    ) -> Vec<f32> {
        let per_row = if rois.is_empty() {
            0
        } else {
            deltas.len() / rois.len()
        };
        let mut out = Vec::with_capacity(deltas.len());
        for (i, roi) in rois.iter().enumerate() {
            for d in deltas[i * per_row..(i + 1) * per_row].chunks_exact(4) {
                out.extend(self.decode(roi, &[d[0], d[1], d[2], d[3]], max_shape));
            }
        }
        out
    }

    /// `delta2bbox` on tensors, differentiable with respect to `deltas` (the path of
    /// `reg_decoded_bbox = True`, where mmdet's box heads decode the predicted deltas before
    /// an IoU-type loss). `rois (n, 4)`, `deltas (n, 4·k)` → boxes `(n, 4·k)`. The `dw, dh`
    /// clamp at `±|log(wh_ratio_clip)|` has zero gradient outside, as in PyTorch.
    pub fn decode_tensor(
        &self,
        rois: Tensor<2>,
        deltas: Tensor<2>,
        max_shape: Option<(usize, usize)>,
    ) -> Tensor<2> {
        let [n, cols] = deltas.dims();
        let k = cols / 4;
        let device = deltas.device();
        let vec4 = |v: [f64; 4]| {
            Tensor::<3>::from_data(
                TensorData::new(v.map(|x| x as f32).to_vec(), [1, 1, 4]),
                &device,
            )
        };
        let d =
            deltas.reshape([n, k, 4]) * vec4(self.cfg.target_stds) + vec4(self.cfg.target_means);
        let part = |t: &Tensor<3>, j: usize| t.clone().narrow(2, j, 1);
        let max_ratio = WH_RATIO_CLIP.ln().abs();
        let (dx, dy) = (part(&d, 0), part(&d, 1));
        let dw = part(&d, 2).clamp(-max_ratio, max_ratio);
        let dh = part(&d, 3).clamp(-max_ratio, max_ratio);
        let r = rois.reshape([n, 1, 4]);
        let (x1, y1, x2, y2) = (part(&r, 0), part(&r, 1), part(&r, 2), part(&r, 3));
        let px = (x1.clone() + x2.clone()) * 0.5;
        let py = (y1.clone() + y2.clone()) * 0.5;
        let pw = x2 - x1;
        let ph = y2 - y1;
        let gw = pw.clone() * dw.exp();
        let gh = ph.clone() * dh.exp();
        let gx = px + pw * dx;
        let gy = py + ph * dy;
        let mut b = [
            gx.clone() - gw.clone() * 0.5,
            gy.clone() - gh.clone() * 0.5,
            gx + gw * 0.5,
            gy + gh * 0.5,
        ];
        if let (Some((h, w)), true) = (max_shape, self.cfg.clip_border) {
            let (h, w) = (h as f64, w as f64);
            for (j, t) in b.iter_mut().enumerate() {
                let hi = if j % 2 == 0 { w } else { h };
                *t = t.clone().clamp(0.0, hi);
            }
        }
        Tensor::cat(b.to_vec(), 2).reshape([n, cols])
    }
}
