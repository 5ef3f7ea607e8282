//! Test-time augmentation (mmseg's `aug_test`): every view of `MultiScaleFlipAug` (each
//! scale, flipped or not) predicts class probabilities at the original image size, a flipped
//! view's are flipped back, and their mean decides each pixel.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use image::GrayImage;
use mona_core::ops::resize::bilinear;
use mona_data::transforms::TtaView;
use mona_data::{Pipeline, Results, sample_rng};

use crate::dataset::SegDataset;
use crate::error::SegError;
use crate::segmentor::EncoderDecoder;
use crate::task::{collate, label_map};

/// The class probabilities `(1, C, H, W)` of one view of a sample, at the original size and
/// in the original orientation (mmseg's `inference` with `rescale`: logits resized, softmax,
/// flipped back).
pub fn view_probabilities(
    model: &EncoderDecoder,
    r: &Results,
    flipped: bool,
    device: &Device,
) -> Result<Tensor<4>, SegError> {
    let b = collate(std::slice::from_ref(r), device)?;
    let [oh, ow, _] = r.ori_shape;
    let probs = softmax(bilinear(model.inference(b.images), [oh, ow]), 1);
    Ok(if flipped { probs.flip([3]) } else { probs })
}

/// The label map of sample `idx` from the mean of its views' probabilities, with the first
/// view's results (its path and original shape).
pub fn predict_views(
    model: &EncoderDecoder,
    dataset: &SegDataset,
    idx: usize,
    views: &[TtaView],
    device: &Device,
) -> Result<(GrayImage, Results), SegError> {
    merge_views(model, views, device, |pipeline| {
        let mut rng = sample_rng(0, 0, idx as u64);
        Ok(dataset.load_with(idx, pipeline, &mut rng)?)
    })
}

/// The label map from the mean of the views' probabilities, each view's sample given by
/// `load` from its pipeline; with the first view's results.
pub fn merge_views(
    model: &EncoderDecoder,
    views: &[TtaView],
    device: &Device,
    mut load: impl FnMut(&Pipeline) -> Result<Results, SegError>,
) -> Result<(GrayImage, Results), SegError> {
    let mut sum: Option<Tensor<4>> = None;
    let mut first: Option<Results> = None;
    for view in views {
        let r = load(&view.pipeline)?;
        let probs = view_probabilities(model, &r, view.flip, device)?;
        sum = Some(match sum {
            Some(s) => s + probs,
            None => probs,
        });
        first.get_or_insert(r);
    }
    let (Some(sum), Some(r)) = (sum, first) else {
        return Err(SegError::NoViews);
    };
    let mean = sum / views.len() as f32;
    Ok((label_map(mean, &r)?, r))
}
