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

/// The `Resize` inside `MultiScaleFlipAug` at one of its scales (bilinear, cv2).
fn test_resize(
    inner: &ConfigNode<'_>,
    scale: (usize, usize),
) -> Result<Box<dyn Transform>, BuildError> {
    let keep_ratio = inner.extract_field::<bool>("keep_ratio")?.unwrap_or(true);
    Ok(Box::new(Resize {
        mode: ResizeMode::Rescale {
            scale,
            ratio_range: None,
            keep_ratio,
        },
        interpolation: Interpolation::Bilinear,
        backend: Backend::Cv2,
        override_scale: false,
    }))
}

/// The transforms of `MultiScaleFlipAug` (`msfa`) for one view: its `Resize` at `scale`, its
/// `RandomFlip` flipping horizontally always (`flipped`) or dropped (never flipping), the rest
/// as configured.
fn msfa_view(
    msfa: &ConfigNode<'_>,
    scale: (usize, usize),
    flipped: bool,
) -> Result<Vec<Box<dyn Transform>>, BuildError> {
    let mut out: Vec<Box<dyn Transform>> = Vec::new();
    for inner in msfa.child("transforms")?.items() {
        match inner.type_name()? {
            "Resize" => out.push(test_resize(&inner, scale)?),
            "RandomFlip" if flipped => out.push(Box::new(RandomFlip {
                prob: 1.0,
                direction: crate::results::FlipDirection::Horizontal,
            })),
            "RandomFlip" => {}
            _ => out.push(build_transform(&inner)?),
        }
    }
    Ok(out)
}

/// One view of test-time augmentation: a pipeline at one scale, flipped horizontally or not
/// (a flipped view's prediction is flipped back before the views are merged).
pub struct TtaView {
    pub pipeline: Pipeline,
    pub flip: bool,
}

/// mmseg's `--aug-test`: the ratios 0.5 to 1.75 of `img_scale`, each also flipped.
pub const AUG_TEST_RATIOS: [f64; 6] = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75];

/// Which views of `MultiScaleFlipAug` to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtaMode {
    /// `img_scale` (the first of a list) only, not flipped, whatever the config asks (a
    /// dataset's own pipeline).
    Plain,
    /// What the config asks: its scales (`img_scale`, times `img_ratios`) and `flip`.
    Config,
    /// mmseg's `--aug-test`: [`AUG_TEST_RATIOS`] of `img_scale`, with flip.
    AugTest,
    /// Detection's `--aug-test`: the config's scales, each also flipped (mmdet has no
    /// `--aug-test`; its users set `flip = True` in the test pipeline, which this does).
    Flip,
}

/// A scale or a list of scales: mmseg's one `img_scale`, mmdet's `img_scale` list.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(v) => vec![v],
            OneOrMany::Many(v) => v,
        }
    }
}

/// What a `MultiScaleFlipAug` node asks for: its scales in order, and whether each is also
/// flipped. mmseg writes one `img_scale` with `img_ratios`, mmdet a list of `img_scale`s;
/// both are read. mmdet's `scale_factor` (resizing by factors of the original size) and a
/// flip other than horizontal are refused rather than ignored.
struct MsfaRequest {
    scales: Vec<(usize, usize)>,
    /// The (first) `img_scale`: the plain view's scale, and what `--aug-test`'s ratios
    /// multiply.
    base_scale: (usize, usize),
    flip: bool,
}

fn msfa_request(msfa: &ConfigNode<'_>) -> Result<MsfaRequest, BuildError> {
    const SCALE: &str = "expected a [w, h] scale or a list of them";
    let scales: Vec<(usize, usize)> = msfa
        .child("img_scale")?
        .extract::<OneOrMany<[usize; 2]>>()
        .map_err(|_| BuildError::invalid(msfa, Some("img_scale"), SCALE))?
        .into_vec()
        .into_iter()
        .map(|[w, h]| (w, h))
        .collect();
    let Some(&base_scale) = scales.first() else {
        return Err(BuildError::invalid(msfa, Some("img_scale"), SCALE));
    };
    if msfa.get("scale_factor").is_some() {
        return Err(BuildError::invalid(
            msfa,
            Some("scale_factor"),
            "resizing by factors of the original size is not supported; list the scales in img_scale",
        ));
    }
    let directions = msfa
        .extract_field::<OneOrMany<String>>("flip_direction")?
        .map(OneOrMany::into_vec)
        .unwrap_or_default();
    if let Some(d) = directions.iter().find(|d| *d != "horizontal") {
        return Err(BuildError::invalid(
            msfa,
            Some("flip_direction"),
            format!("only horizontal flip is supported, not {d:?}"),
        ));
    }
    let scales = match msfa.extract_field::<OneOrMany<f64>>("img_ratios")? {
        Some(ratios) if scales.len() == 1 => ratios
            .into_vec()
            .iter()
            .map(|&r| scaled(base_scale, r))
            .collect(),
        Some(_) => {
            return Err(BuildError::invalid(
                msfa,
                Some("img_ratios"),
                "img_ratios needs a single img_scale",
            ));
        }
        None => scales,
    };
    Ok(MsfaRequest {
        scales,
        base_scale,
        flip: msfa.extract_field::<bool>("flip")?.unwrap_or(false),
    })
}

/// mmseg's `(int(w·r), int(h·r))` of a scale `(w, h)` and a ratio `r`.
fn scaled((w, h): (usize, usize), r: f64) -> (usize, usize) {
    ((w as f64 * r) as usize, (h as f64 * r) as usize)
}

/// A dataset's own pipeline: `MultiScaleFlipAug` at its (first) `img_scale`, not flipped,
/// whatever test-time augmentation the config asks (training sets have no
/// `MultiScaleFlipAug`; a task tests through [`build_tta_views`]).
pub fn build_plain_pipeline(node: &ConfigNode<'_>) -> Result<Pipeline, BuildError> {
    let mut views = build_tta_views(node, TtaMode::Plain)?;
    Ok(views.remove(0).pipeline)
}

/// The views of a test pipeline with `MultiScaleFlipAug`, in mmseg's and mmdet's order (each
/// scale, then not flipped / flipped): its scales (`img_ratios` times `img_scale`, as
/// `(int(w·r), int(h·r))`, or mmdet's list of `img_scale`s), and with `flip = true` each also
/// flipped horizontally; `mode` can override them (see [`TtaMode`]). A pipeline without
/// `MultiScaleFlipAug` is one view.
pub fn build_tta_views(node: &ConfigNode<'_>, mode: TtaMode) -> Result<Vec<TtaView>, BuildError> {
    let items = node.items();
    let Some(at) = items
        .iter()
        .position(|i| i.type_name().is_ok_and(|t| t == "MultiScaleFlipAug"))
    else {
        return Ok(vec![TtaView {
            pipeline: build_pipeline(node)?,
            flip: false,
        }]);
    };
    let msfa = &items[at];
    let request = msfa_request(msfa)?;
    let (scales, flip) = match mode {
        TtaMode::Plain => (vec![request.base_scale], false),
        TtaMode::Config => (request.scales, request.flip),
        TtaMode::Flip => (request.scales, true),
        TtaMode::AugTest => {
            let scales = AUG_TEST_RATIOS
                .iter()
                .map(|&r| scaled(request.base_scale, r))
                .collect();
            (scales, true)
        }
    };
    let mut views = Vec::new();
    for s in scales {
        for flipped in std::iter::once(false).chain(flip.then_some(true)) {
            let mut out: Vec<Box<dyn Transform>> = Vec::new();
            for item in &items[..at] {
                out.push(build_transform(item)?);
            }
            out.extend(msfa_view(msfa, s, flipped)?);
            for item in &items[at + 1..] {
                out.push(build_transform(item)?);
            }
            views.push(TtaView {
                pipeline: Pipeline::new(out),
                flip: flipped,
            });
        }
    }
    Ok(views)
}

/// Builds a test pipeline the way mmseg / mmdet / mmcls run it with one scale and no flip:
/// `MultiScaleFlipAug(img_scale, flip = false, transforms)` is flattened into its transforms,
/// its `Resize` taking the `img_scale` (bilinear, cv2) and its `RandomFlip` dropped (with
/// `flip = false` it never flips). For a task without test-time augmentation, a config that
/// asks for it (several scales or ratios, or flip) is refused rather than run at one scale.
pub fn build_flat_pipeline(node: &ConfigNode<'_>) -> Result<Pipeline, BuildError> {
    let mut out: Vec<Box<dyn Transform>> = Vec::new();
    for item in node.items() {
        if item.type_name()? != "MultiScaleFlipAug" {
            out.push(build_transform(&item)?);
            continue;
        }
        let request = msfa_request(&item)?;
        if request.scales.len() > 1 {
            let key = if item.get("img_ratios").is_some() {
                "img_ratios"
            } else {
                "img_scale"
            };
            return Err(BuildError::invalid(
                &item,
                Some(key),
                "multi-scale test-time augmentation is not supported for this task; give one scale",
            ));
        }
        if request.flip {
            return Err(BuildError::invalid(
                &item,
                Some("flip"),
                "flip test-time augmentation is not supported for this task",
            ));
        }
        out.extend(msfa_view(&item, request.scales[0], false)?);
    }
    Ok(Pipeline::new(out))
}
