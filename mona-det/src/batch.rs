//! Batches of variable-size images: padding, stacking, and the training batch source.
//!
//! Images of one batch are padded with zeros at the bottom and right to the batch's
//! largest height and width (mmcv's `collate` with `pad_dims = 2`); each image keeps its
//! own `img_shape` (boxes are clipped to it) and `pad_shape` (anchors outside are invalid),
//! as in mmdet's `img_metas`.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use image::GrayImage;
use mona_core::runner::{BatchSource, BoxError};
use mona_data::{DataLoader, Image, Results};

use crate::error::BatchError;
use crate::retina::{GtInstances, ImageMeta};
use crate::sampler::SamplerRng;

/// One collated batch.
pub struct DetBatch {
    /// `(B, 3, H, W)`, zero-padded to the batch's largest image.
    pub images: Tensor<4>,
    pub metas: Vec<ImageMeta>,
    pub gts: Vec<GtInstances>,
    /// mmdet's `scale_factor` per image (detections are divided by it).
    pub scale_factors: Vec<[f32; 4]>,
    /// `(h, w)` of each original image (masks are pasted back at this size).
    pub ori_shapes: Vec<(usize, usize)>,
    /// Instance masks per image (one 0/1 bitmap per box, at the image's padded size); empty
    /// for pipelines without `LoadAnnotations(with_mask = true)`.
    pub gt_masks: Vec<Vec<GrayImage>>,
    pub paths: Vec<PathBuf>,
    /// Seeds the samplers of two-stage detectors: set by [`DetSource`] from the run's seed,
    /// the epoch and the batch, so a resumed run draws what an uninterrupted one would.
    pub seed: u64,
}

/// Pads the normalised images of `batch` to a common size and stacks them onto `device`.
pub fn collate(batch: &[Results], device: &Device) -> Result<DetBatch, BatchError> {
    if batch.is_empty() {
        return Err(BatchError::Empty);
    }
    let mut dims = Vec::with_capacity(batch.len());
    for r in batch {
        match &r.img {
            Image::F32 {
                data,
                channels: 3,
                height,
                width,
            } if data.len() == 3 * height * width => dims.push((*height, *width)),
            other => {
                return Err(BatchError::NotNormalised {
                    path: r.path.clone(),
                    found: other.describe(),
                });
            }
        }
    }
    let h = dims.iter().map(|d| d.0).max().unwrap_or(0);
    let w = dims.iter().map(|d| d.1).max().unwrap_or(0);
    let mut pixels = vec![0f32; batch.len() * 3 * h * w];
    let mut metas = Vec::with_capacity(batch.len());
    let mut gts = Vec::with_capacity(batch.len());
    for (i, (r, &(ih, iw))) in batch.iter().zip(&dims).enumerate() {
        if let Image::F32 { data, .. } = &r.img {
            for c in 0..3 {
                for y in 0..ih {
                    let src = &data[(c * ih + y) * iw..(c * ih + y + 1) * iw];
                    let dst = ((i * 3 + c) * h + y) * w;
                    pixels[dst..dst + iw].copy_from_slice(src);
                }
            }
        }
        if r.gt_bboxes.len() != r.gt_labels.len() {
            return Err(BatchError::Labels {
                path: r.path.clone(),
                boxes: r.gt_bboxes.len(),
                labels: r.gt_labels.len(),
            });
        }
        if let Some(masks) = &r.gt_masks
            && masks.len() != r.gt_bboxes.len()
        {
            return Err(BatchError::Masks {
                path: r.path.clone(),
                boxes: r.gt_bboxes.len(),
                masks: masks.len(),
            });
        }
        let pad = r.pad_shape.unwrap_or(r.img_shape);
        metas.push(ImageMeta {
            img_shape: (r.img_shape[0], r.img_shape[1]),
            pad_shape: (pad[0], pad[1]),
        });
        gts.push(GtInstances {
            bboxes: r.gt_bboxes.clone(),
            labels: r.gt_labels.iter().map(|&l| l as i64).collect(),
        });
    }
    Ok(DetBatch {
        images: Tensor::<4>::from_data(TensorData::new(pixels, [batch.len(), 3, h, w]), device),
        metas,
        gts,
        scale_factors: batch
            .iter()
            .map(|r| r.scale_factor.unwrap_or([1.0; 4]))
            .collect(),
        ori_shapes: batch
            .iter()
            .map(|r| (r.ori_shape[0], r.ori_shape[1]))
            .collect(),
        gt_masks: batch
            .iter()
            .map(|r| r.gt_masks.clone().unwrap_or_default())
            .collect(),
        paths: batch.iter().map(|r| r.path.clone()).collect(),
        seed: 0,
    })
}

impl DetBatch {
    /// The batch on `device` (for data-parallel replicas).
    pub fn to_device(&self, device: &Device) -> DetBatch {
        DetBatch {
            images: self.images.clone().to_device(device),
            metas: self.metas.clone(),
            gts: self.gts.clone(),
            scale_factors: self.scale_factors.clone(),
            ori_shapes: self.ori_shapes.clone(),
            gt_masks: self.gt_masks.clone(),
            paths: self.paths.clone(),
            seed: self.seed,
        }
    }
}

/// Training batches from a shuffled loader.
pub struct DetSource {
    pub loader: DataLoader,
    pub device: Device,
    /// The run's seed (with the epoch and batch index it seeds each batch's samplers).
    pub seed: u64,
}

impl BatchSource<DetBatch> for DetSource {
    fn epoch_len(&self) -> usize {
        self.loader.epoch_len()
    }

    fn iter_epoch_strided<'a>(
        &'a self,
        epoch: usize,
        first: usize,
        stride: usize,
    ) -> Box<dyn Iterator<Item = Result<DetBatch, BoxError>> + 'a>
    where
        DetBatch: 'a,
    {
        Box::new(
            self.loader
                .iter_epoch_strided(epoch as u64, first, stride)
                .enumerate()
                .map(move |(i, batch)| {
                    let mut b = collate(&batch?, &self.device)?;
                    // seeded by the batch's index in the epoch, whichever process trains it
                    let index = first + i * stride.max(1);
                    b.seed =
                        SamplerRng::from_parts(&[self.seed, epoch as u64, index as u64]).next_u64();
                    Ok(b)
                }),
        )
    }
}
