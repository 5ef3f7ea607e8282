//! Classification batches: images stacked to `(B, 3, H, W)` and labels, on the device.

use std::sync::Arc;

use burn::tensor::{Device, Int, Tensor, TensorData};
use mona_core::runner::{BatchSource, BoxError};
use mona_data::{DataLoader, Dataset, Results, stack_images};

use crate::error::ClsError;

/// A collated batch.
#[derive(Debug, Clone)]
pub struct ClsBatch {
    pub images: Tensor<4>,
    /// `None` for unlabelled test data.
    pub labels: Option<Tensor<1, Int>>,
    pub paths: Vec<std::path::PathBuf>,
}

/// Stacks a batch of pipeline results onto `device`.
pub fn collate(batch: &[Results], device: &Device) -> Result<ClsBatch, ClsError> {
    let (pixels, shape) = stack_images(batch)?;
    let images = Tensor::<4>::from_data(TensorData::new(pixels, shape), device);
    let labels: Option<Vec<i64>> = batch.iter().map(|r| r.gt_label.map(|l| l as i64)).collect();
    let labels = labels.map(|l| {
        let n = l.len();
        Tensor::<1, Int>::from_data(TensorData::new(l, [n]), device)
    });
    Ok(ClsBatch {
        images,
        labels,
        paths: batch.iter().map(|r| r.path.clone()).collect(),
    })
}

/// Training batches from a shuffled loader.
pub struct ClsSource {
    pub loader: DataLoader,
    pub device: Device,
}

impl ClsSource {
    /// The shuffled training batches of `dataset` for `devices` devices taking them in turn.
    pub fn new(
        dataset: Arc<dyn Dataset>,
        batch_size: usize,
        seed: u64,
        workers: usize,
        device: Device,
        devices: usize,
    ) -> Result<Self, ClsError> {
        let loader = DataLoader::new(dataset, batch_size, true, seed, workers, false)?;
        Ok(Self {
            loader: loader.with_devices(devices),
            device,
        })
    }
}

impl BatchSource<ClsBatch> for ClsSource {
    fn epoch_len(&self) -> usize {
        self.loader.epoch_len()
    }

    fn iter_epoch_strided<'a>(
        &'a self,
        epoch: usize,
        first: usize,
        stride: usize,
    ) -> Box<dyn Iterator<Item = Result<ClsBatch, BoxError>> + 'a>
    where
        ClsBatch: 'a,
    {
        Box::new(
            self.loader
                .iter_epoch_strided(epoch as u64, first, stride)
                .map(move |batch| Ok(collate(&batch?, &self.device)?)),
        )
    }
}
