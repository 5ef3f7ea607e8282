//! mmdet's `SingleRoIExtractor`: every RoI is pooled from the one FPN level that matches its
//! size (`finest_scale` 56 ⇒ RoIs of √(wh) < 112 px read stride 4, < 224 stride 8, …), with
//! the level's own RoIAlign (`spatial_scale = 1 / stride`).

use burn::tensor::{Int, Tensor, TensorData};
use serde::Deserialize;

use super::roi_align::{Roi, RoiAlignConfig, RoiAlignError, RoiLayerConfig, roi_align};

/// The `bbox_roi_extractor` / `mask_roi_extractor` config (`type = "SingleRoIExtractor"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleRoIExtractorConfig {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub roi_layer: RoiLayerConfig,
    pub out_channels: usize,
    pub featmap_strides: Vec<usize>,
    #[serde(default = "fifty_six")]
    pub finest_scale: f32,
}

fn fifty_six() -> f32 {
    56.0
}

/// Why RoI features cannot be extracted.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RoiExtractorError {
    #[error("roi_extractor: featmap_strides is empty")]
    NoLevels,
    #[error("roi_extractor: only pool_mode \"avg\" is supported, got {0:?}")]
    PoolMode(String),
    #[error("roi_extractor: {got} feature maps for {want} featmap_strides")]
    Levels { got: usize, want: usize },
    #[error("roi_extractor: feature level {level} has {got} channels, out_channels is {want}")]
    Channels {
        level: usize,
        got: usize,
        want: usize,
    },
    #[error(transparent)]
    RoiAlign(#[from] RoiAlignError),
}

/// The extractor: one RoIAlign setting per level.
#[derive(Debug, Clone)]
pub struct SingleRoIExtractor {
    pub cfg: SingleRoIExtractorConfig,
    pub layers: Vec<RoiAlignConfig>,
}

impl SingleRoIExtractor {
    pub fn new(cfg: &SingleRoIExtractorConfig) -> Result<Self, RoiExtractorError> {
        if cfg.featmap_strides.is_empty() {
            return Err(RoiExtractorError::NoLevels);
        }
        if cfg.roi_layer.pool_mode != "avg" {
            return Err(RoiExtractorError::PoolMode(cfg.roi_layer.pool_mode.clone()));
        }
        Ok(Self {
            layers: cfg
                .featmap_strides
                .iter()
                .map(|&s| cfg.roi_layer.at_stride(s))
                .collect(),
            cfg: cfg.clone(),
        })
    }

    /// How many FPN levels it reads (`num_inputs`): the detector passes `x[:num_inputs]`.
    pub fn num_inputs(&self) -> usize {
        self.layers.len()
    }

    /// `(out_h, out_w)`.
    pub fn output_size(&self) -> [usize; 2] {
        self.layers[0].output_size
    }

    /// `map_roi_levels`: `floor(log2(√(w·h) / finest_scale + 1e-6))` clamped to
    /// `[0, num_levels − 1]`, in f32 like mmdet (a NaN scale maps to level 0).
    pub fn map_roi_levels(&self, rois: &[Roi], num_levels: usize) -> Vec<usize> {
        let top = num_levels.saturating_sub(1) as f32;
        rois.iter()
            .map(|r| {
                let scale = ((r[3] - r[1]) * (r[4] - r[2])).sqrt();
                let lvl = (scale / self.cfg.finest_scale + 1e-6).log2().floor();
                lvl.clamp(0.0, top) as usize
            })
            .collect()
    }

    /// RoI features `(N, C, out_h, out_w)` in the order of `rois`, from the first
    /// [`Self::num_inputs`] maps of `feats` (more are ignored, as mmdet slices them).
    pub fn forward(
        &self,
        feats: &[Tensor<4>],
        rois: &[Roi],
    ) -> Result<Tensor<4>, RoiExtractorError> {
        let levels = self.num_inputs();
        if feats.len() < levels {
            return Err(RoiExtractorError::Levels {
                got: feats.len(),
                want: levels,
            });
        }
        for (level, f) in feats[..levels].iter().enumerate() {
            let c = f.dims()[1];
            if c != self.cfg.out_channels {
                return Err(RoiExtractorError::Channels {
                    level,
                    got: c,
                    want: self.cfg.out_channels,
                });
            }
        }
        if levels == 1 {
            return Ok(roi_align(feats[0].clone(), rois, &self.layers[0])?);
        }
        let target = self.map_roi_levels(rois, levels);
        let mut parts = Vec::new();
        let mut order = Vec::with_capacity(rois.len());
        for (level, feat) in feats[..levels].iter().enumerate() {
            let inds: Vec<usize> = (0..rois.len()).filter(|&i| target[i] == level).collect();
            if inds.is_empty() {
                continue;
            }
            let level_rois: Vec<Roi> = inds.iter().map(|&i| rois[i]).collect();
            parts.push(roi_align(feat.clone(), &level_rois, &self.layers[level])?);
            order.extend(inds);
        }
        if parts.is_empty() {
            let [h, w] = self.output_size();
            return Ok(Tensor::zeros(
                [0, self.cfg.out_channels, h, w],
                &feats[0].device(),
            ));
        }
        let stacked = Tensor::cat(parts, 0);
        // `order[k]` is the RoI in row k; rows back into RoI order (select is differentiable)
        if order.iter().enumerate().all(|(k, &i)| k == i) {
            return Ok(stacked);
        }
        let mut inverse = vec![0i64; order.len()];
        for (k, &i) in order.iter().enumerate() {
            inverse[i] = k as i64;
        }
        let index =
            Tensor::<1, Int>::from_data(TensorData::new(inverse, [order.len()]), &stacked.device());
        Ok(stacked.select(0, index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roi::roi_align::OutputSize;

    fn extractor(out: usize) -> SingleRoIExtractor {
        SingleRoIExtractor::new(&SingleRoIExtractorConfig {
            kind: None,
            roi_layer: RoiLayerConfig {
                kind: None,
                output_size: OutputSize::Square(out),
                sampling_ratio: 0,
                pool_mode: "avg".into(),
                aligned: true,
                use_torchvision: false,
            },
            out_channels: 2,
            featmap_strides: vec![4, 8, 16, 32],
            finest_scale: 56.0,
        })
        .unwrap()
    }

    fn square(side: f32) -> Roi {
        [0.0, 10.0, 10.0, 10.0 + side, 10.0 + side]
    }

    #[test]
    fn level_mapping() {
        let e = extractor(7);
        let sides = [
            1.0, 30.0, 55.9, 56.0, 111.9, 112.0, 223.0, 224.0, 447.0, 448.0, 1000.0,
        ];
        let rois: Vec<Roi> = sides.iter().map(|&s| square(s)).collect();
        assert_eq!(
            e.map_roi_levels(&rois, 4),
            vec![0, 0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
        );
        // a 56 × 224 box has scale 112 → level 1; fewer levels clamp lower
        let flat = [0.0, 0.0, 0.0, 224.0, 56.0];
        assert_eq!(e.map_roi_levels(&[flat], 4), vec![1]);
        assert_eq!(e.map_roi_levels(&[square(1000.0)], 2), vec![1]);
        // degenerate boxes (zero or negative area) go to level 0
        assert_eq!(
            e.map_roi_levels(&[[0.0, 5.0, 5.0, 5.0, 9.0], [0.0, 9.0, 9.0, 5.0, 20.0]], 4),
            vec![0, 0]
        );
    }

    #[test]
    fn forward_reads_each_rois_level_in_roi_order() {
        use burn::tensor::Device;
        let device = Device::flex();
        let e = extractor(7);
        // level ℓ is filled with the constant ℓ + 1 (image 256 × 256)
        let feats: Vec<Tensor<4>> = [4usize, 8, 16, 32, 64]
            .iter()
            .enumerate()
            .map(|(l, s)| {
                Tensor::<4>::ones([1, 2, 256 / s, 256 / s], &device).mul_scalar(l as f32 + 1.0)
            })
            .collect();
        let rois = vec![
            square(200.0),
            square(20.0),
            square(120.0),
            square(60.0),
            square(240.0),
        ];
        let out = e.forward(&feats, &rois).unwrap();
        assert_eq!(out.dims(), [5, 2, 7, 7]);
        // the centre bin of each RoI lies inside the map: it reads the level's constant
        let v: Vec<f32> = out.to_data().convert::<f32>().try_into_vec().unwrap();
        let centre = |n: usize| v[n * 2 * 49 + 3 * 7 + 3];
        let levels: Vec<f32> = (0..5).map(centre).collect();
        assert_eq!(levels, vec![2.0, 1.0, 2.0, 1.0, 3.0]);
        // the 14 × 14 extractor agrees on the shapes
        assert_eq!(
            extractor(14).forward(&feats, &rois).unwrap().dims(),
            [5, 2, 14, 14]
        );
        // too few maps is an error
        assert!(matches!(
            e.forward(&feats[..3], &rois),
            Err(RoiExtractorError::Levels { got: 3, want: 4 })
        ));
    }
}
