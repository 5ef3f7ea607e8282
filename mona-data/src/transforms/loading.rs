//! `LoadImageFromFile`: decodes `results.path` (mmcv: `img_prefix` joined with the filename).

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{Transform, TransformEntry};
use crate::decode::read_image;
use crate::error::DataError;
use crate::results::{Image, Results};
use crate::rng::DataRng;

/// Reads the sample's image as 8-bit RGB (mmcv `color_type='color'`).
#[derive(Clone, Debug, Default)]
pub struct LoadImageFromFile;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default)]
    to_float32: bool,
    #[serde(default = "default_color_type")]
    color_type: String,
    file_client_args: Option<FileClientArgs>,
}

#[derive(Deserialize)]
struct FileClientArgs {
    backend: String,
}

fn default_color_type() -> String {
    "color".to_string()
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    // Each of these would change pixels; refuse rather than load something else.
    if args.to_float32 {
        return Err(BuildError::invalid(
            node,
            Some("to_float32"),
            "to_float32 = true is not supported (images stay 8-bit until Normalize)",
        ));
    }
    if args.color_type != "color" {
        return Err(BuildError::invalid(
            node,
            Some("color_type"),
            format!(
                "unsupported color_type \"{}\"; supported: color",
                args.color_type
            ),
        ));
    }
    if let Some(fc) = args.file_client_args
        && fc.backend != "disk"
    {
        return Err(BuildError::invalid(
            node,
            Some("file_client_args.backend"),
            format!(
                "unsupported file backend \"{}\"; supported: disk",
                fc.backend
            ),
        ));
    }
    Ok(Box::new(LoadImageFromFile))
}

inventory::submit! { TransformEntry::new("LoadImageFromFile", build) }

impl Transform for LoadImageFromFile {
    fn apply(&self, mut r: Results, _rng: &mut DataRng) -> Result<Results, DataError> {
        let img = read_image(&r.path)?;
        r.img = Image::U8(img);
        r.ori_shape = r.img.shape();
        r.img_shape = r.ori_shape;
        Ok(r)
    }

    fn name(&self) -> &'static str {
        "LoadImageFromFile"
    }
}
