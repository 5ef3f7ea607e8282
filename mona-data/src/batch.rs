//! Batching for classification: normalised images stacked to NCHW, labels to a list.
//!
//! The output is plain `Vec`s with a shape so that this crate stays free of any device: the
//! model crate moves them to a tensor on whatever device it runs.

use crate::error::DataError;
use crate::results::{Image, Results};

/// Stacks the normalised images of `batch` into one NCHW buffer and its shape
/// `[n, c, h, w]`. Every image must be [`Image::F32`] of one size; otherwise an error names the
/// first offending sample.
pub fn stack_images(batch: &[Results]) -> Result<(Vec<f32>, [usize; 4]), DataError> {
    let first = batch.first().ok_or(DataError::EmptyBatch)?;
    let shape = f32_shape(first)?;
    let (c, h, w) = shape;
    let mut data = Vec::with_capacity(batch.len() * c * h * w);
    for r in batch {
        let this = f32_shape(r)?;
        if this != shape {
            return Err(DataError::Batch {
                path: r.path.clone(),
                message: format!(
                    "image is {}x{}x{} (CxHxW) but the batch's first image ({}) is {c}x{h}x{w}; \
                     add a fixed-size crop or resize to the pipeline",
                    this.0,
                    this.1,
                    this.2,
                    first.path.display()
                ),
            });
        }
        if let Image::F32 { data: d, .. } = &r.img {
            data.extend_from_slice(d);
        }
    }
    Ok((data, [batch.len(), c, h, w]))
}

fn f32_shape(r: &Results) -> Result<(usize, usize, usize), DataError> {
    match &r.img {
        Image::F32 {
            data,
            channels,
            height,
            width,
        } if data.len() == channels * height * width => Ok((*channels, *height, *width)),
        Image::F32 { data, .. } => Err(DataError::Batch {
            path: r.path.clone(),
            message: format!("image buffer holds {} values, not C*H*W", data.len()),
        }),
        other => Err(DataError::Batch {
            path: r.path.clone(),
            message: format!(
                "expected a normalised image, found {}; add Normalize to the pipeline",
                other.describe()
            ),
        }),
    }
}

/// The classification labels of `batch`; an error names the first sample without one.
pub fn stack_labels(batch: &[Results]) -> Result<Vec<usize>, DataError> {
    batch
        .iter()
        .map(|r| {
            r.gt_label.ok_or_else(|| DataError::Batch {
                path: r.path.clone(),
                message: "sample has no gt_label".to_string(),
            })
        })
        .collect()
}
