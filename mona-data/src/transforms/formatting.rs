//! `ImageToTensor`, `ToTensor`, `Collect`: mmcv's formatting steps, here checks only.
//!
//! In mmcv these convert numpy arrays to torch tensors and drop unlisted keys. Our `Results`
//! is already typed and batching builds tensors ([`crate::batch`]), so they have nothing to
//! convert; they are accepted so that official configs run unchanged, and they still fail
//! loudly when a listed key is missing (a test pipeline asked for `gt_label` on an unlabelled
//! set, or `img` before loading), as mmcv would with a `KeyError`.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::{Image, Results};
use crate::rng::DataRng;

/// The `Results` keys formatting steps may name, with mmcv's spelling.
pub const RESULT_KEYS: &[&str] = &[
    "img",
    "gt_label",
    "gt_semantic_seg",
    "gt_bboxes",
    "gt_labels",
    "gt_bboxes_ignore",
    "gt_masks",
];

/// A formatting step that checks that its `keys` are present.
#[derive(Clone, Debug)]
pub struct CheckKeys {
    name: &'static str,
    keys: Vec<String>,
}

impl CheckKeys {
    /// A step called `name` checking `keys` (each one of [`RESULT_KEYS`]).
    pub fn new(name: &'static str, keys: Vec<String>) -> Self {
        CheckKeys { name, keys }
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

fn present(r: &Results, key: &str) -> bool {
    match key {
        "img" => !matches!(r.img, Image::NotLoaded),
        "gt_label" => r.gt_label.is_some(),
        "gt_semantic_seg" => r.gt_seg.is_some(),
        // Lists: an image without objects is a valid sample.
        "gt_bboxes" | "gt_labels" | "gt_bboxes_ignore" => true,
        // Set by `LoadAnnotations(with_mask = true)` (mmdet raises a KeyError without it).
        "gt_masks" => r.gt_masks.is_some(),
        _ => false,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    keys: Vec<String>,
    /// `Collect`'s image meta keys: our `Results` always carries its meta data.
    #[serde(default, rename = "meta_keys")]
    _meta_keys: Option<IgnoredAny>,
}

fn build_named(
    node: &ConfigNode<'_>,
    name: &'static str,
) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    if name != "Collect" && node.get("meta_keys").is_some() {
        return Err(BuildError::invalid(
            node,
            Some("meta_keys"),
            format!("{name} takes no meta_keys (only Collect does)"),
        ));
    }
    if let Some(bad) = args
        .keys
        .iter()
        .find(|k| !RESULT_KEYS.contains(&k.as_str()))
    {
        return Err(BuildError::invalid(
            node,
            Some("keys"),
            format!(
                "unknown key \"{bad}\"; known keys: {}",
                RESULT_KEYS.join(", ")
            ),
        ));
    }
    Ok(Box::new(CheckKeys::new(name, args.keys)))
}

fn build_image_to_tensor(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    build_named(node, "ImageToTensor")
}

fn build_to_tensor(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    build_named(node, "ToTensor")
}

fn build_collect(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    build_named(node, "Collect")
}

/// mmdet / mmseg `DefaultFormatBundle`: converts every present key to a tensor in mmcv; here
/// batching does that, so it only checks that it has no arguments.
#[derive(Clone, Debug)]
pub struct DefaultFormatBundle;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {
    #[serde(rename = "type")]
    _type: IgnoredAny,
}

fn build_format_bundle(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let _: NoArgs = node.extract()?;
    Ok(Box::new(DefaultFormatBundle))
}

impl Transform for DefaultFormatBundle {
    fn apply(&self, r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        Ok(r)
    }

    fn name(&self) -> &'static str {
        "DefaultFormatBundle"
    }
}

inventory::submit! { TransformEntry::new("DefaultFormatBundle", build_format_bundle) }
inventory::submit! { TransformEntry::new("ImageToTensor", build_image_to_tensor) }
inventory::submit! { TransformEntry::new("ToTensor", build_to_tensor) }
inventory::submit! { TransformEntry::new("Collect", build_collect) }

impl Transform for CheckKeys {
    fn apply(&self, r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        if let Some(missing) = self.keys.iter().find(|k| !present(&r, k)) {
            return Err(r.error(
                self.name,
                format!("key \"{missing}\" is not set for this sample"),
            ));
        }
        Ok(r)
    }

    fn name(&self) -> &'static str {
        self.name
    }
}
