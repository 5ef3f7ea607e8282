//! The transform pipeline: mmcv's `pipeline` list of dicts, each built by name from a registry.
//!
//! A transform takes the sample's [`Results`] by value and returns it changed (or an error
//! naming the image). Random transforms draw from the [`DataRng`] they are handed; they hold
//! no generator of their own, so the loader alone decides the random stream of every sample
//! (see [`crate::rng`]).
//!
//! Names and arguments are those of mmcls 0.x, so official configs run unchanged. Unknown
//! arguments are errors (mmcv raises `TypeError` for them), never silently ignored.
//!
//! Registered here: `LoadImageFromFile`, `RandomResizedCrop`, `RandomFlip`, `Resize`,
//! `CenterCrop`, `Normalize`, `ImageToTensor`, `ToTensor`, `Collect`, and for detection
//! `AutoAugment` and the mmdet `RandomCrop` (sharing the name with mmseg's; the builder picks
//! one from the keys, see `random_crop.rs`). One registry serves every
//! task: segmentation and detection variants of a shared name (`Resize` with `img_scale`,
//! `RandomFlip` with `prob`) extend the builder of that name rather than registering a second
//! entry, because a registry name must be unique.

mod auto_augment;
mod center_crop;
mod det_random_crop;
mod flip;
mod formatting;
mod geometry;
mod load_annotations;
mod loading;
mod normalize;
mod pad;
mod params;
mod photometric;
mod random_crop;
mod random_resized_crop;
mod resize;

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;

use crate::error::DataError;
use crate::ops::{Backend, Interpolation};
use crate::results::Results;
use crate::rng::DataRng;

pub use auto_augment::AutoAugment;
pub use center_crop::CenterCrop;
pub use det_random_crop::{CropSpec, DetRandomCrop};
pub use flip::RandomFlip;
pub use formatting::{CheckKeys, DefaultFormatBundle, RESULT_KEYS};
pub use load_annotations::{LoadAnnotations, reduce_zero_label};
pub use loading::LoadImageFromFile;
pub use normalize::Normalize;
pub use pad::Pad;
pub use photometric::PhotoMetricDistortion;
pub use random_crop::RandomCrop;
pub use random_resized_crop::{CropBox, RandomResizedCrop, sample_crop_box};
pub use resize::{MultiscaleMode, Resize, ResizeMode};

/// One step of a pipeline.
pub trait Transform: Send + Sync {
    /// Transforms one sample. Random choices come from `rng` only.
    fn apply(&self, r: Results, rng: &mut DataRng) -> Result<Results, DataError>;
    /// The config `type` name, for errors and listings.
    fn name(&self) -> &'static str;
}

mona_core::declare_registry! {
    /// Pipeline transforms, selected by the `type` of each item of a `pipeline` list.
    pub struct TransformEntry: "transform" =>
        fn(&ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError>;
}

/// Builds the transform described by one pipeline item.
pub fn build_transform(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let entry = mona_core::registry::lookup::<TransformEntry>(node)?;
    (entry.build)(node)
}

/// An ordered list of transforms (mmcv's `Compose`).
#[derive(Default)]
pub struct Pipeline {
    transforms: Vec<Box<dyn Transform>>,
}

impl Pipeline {
    pub fn new(transforms: Vec<Box<dyn Transform>>) -> Self {
        Pipeline { transforms }
    }

    /// Runs every transform in order; stops at the first error.
    pub fn apply(&self, mut r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        for t in &self.transforms {
            r = t.apply(r, rng)?;
        }
        Ok(r)
    }

    /// The transforms' names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.transforms.iter().map(|t| t.name()).collect()
    }

    pub fn len(&self) -> usize {
        self.transforms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.transforms.is_empty()
    }
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Builds a pipeline from a config list (`data.train.pipeline`). An unknown `type` is an error
/// naming the file, the item's key (`data.train.pipeline.2.type`) and the closest names.
pub fn build_pipeline(node: &ConfigNode<'_>) -> Result<Pipeline, BuildError> {
    if !node.value().is_array() {
        return Err(BuildError::invalid(
            node,
            None,
            format!(
                "expected a list of transforms, found {}",
                node.value().type_str()
            ),
        ));
    }
    node.items()
        .iter()
        .map(build_transform)
        .collect::<Result<Vec<_>, _>>()
        .map(Pipeline::new)
}

/// Builds a test pipeline the way mmseg / mmdet run it with one scale and no flip:
/// `MultiScaleFlipAug(img_scale, flip = false, transforms)` is flattened into its transforms,
/// its `Resize` taking the `img_scale` (bilinear, cv2) and its `RandomFlip` dropped (with
/// `flip = false` it never flips). Flip or multi-scale test-time augmentation is refused.
pub fn build_flat_pipeline(node: &ConfigNode<'_>) -> Result<Pipeline, BuildError> {
    let mut out: Vec<Box<dyn Transform>> = Vec::new();
    for item in node.items() {
        if item.type_name()? != "MultiScaleFlipAug" {
            out.push(build_transform(&item)?);
            continue;
        }
        let scale: [usize; 2] = item.child("img_scale")?.extract().map_err(|_| {
            BuildError::invalid(
                &item,
                Some("img_scale"),
                "expected one [w, h] scale (multi-scale test-time augmentation is not supported)",
            )
        })?;
        if item.extract_field::<bool>("flip")?.unwrap_or(false) {
            return Err(BuildError::invalid(
                &item,
                Some("flip"),
                "flip test-time augmentation is not supported",
            ));
        }
        for inner in item.child("transforms")?.items() {
            match inner.type_name()? {
                "Resize" => {
                    let keep_ratio = inner.extract_field::<bool>("keep_ratio")?.unwrap_or(true);
                    out.push(Box::new(Resize {
                        mode: ResizeMode::Rescale {
                            scale: (scale[0], scale[1]),
                            ratio_range: None,
                            keep_ratio,
                        },
                        interpolation: Interpolation::Bilinear,
                        backend: Backend::Cv2,
                        override_scale: false,
                    }));
                }
                // flip = false: the inner RandomFlip never flips.
                "RandomFlip" => {}
                _ => out.push(build_transform(&inner)?),
            }
        }
    }
    Ok(Pipeline::new(out))
}
