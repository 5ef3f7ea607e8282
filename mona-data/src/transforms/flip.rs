//! `RandomFlip` (mmcls 0.x): flip with probability `flip_prob` along `direction`.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::geometry;
use super::{Transform, TransformEntry};
use crate::error::DataError;
use crate::results::{FlipDirection, Results};
use crate::rng::DataRng;

/// Mirrors the image (and `gt_seg`, boxes, instance masks) with probability `prob`.
#[derive(Clone, Debug)]
pub struct RandomFlip {
    pub prob: f64,
    pub direction: FlipDirection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    #[serde(rename = "type")]
    _type: IgnoredAny,
    #[serde(default)]
    flip_prob: Option<f64>,
    /// mmseg's name for `flip_prob`.
    #[serde(default)]
    prob: Option<f64>,
    /// mmdet 2.x's name for `flip_prob`.
    #[serde(default)]
    flip_ratio: Option<f64>,
    #[serde(default = "default_direction")]
    direction: String,
}

fn default_prob() -> f64 {
    0.5
}

fn default_direction() -> String {
    "horizontal".to_string()
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    let args: Args = node.extract()?;
    let given: Vec<(&str, f64)> = [
        ("flip_prob", args.flip_prob),
        ("prob", args.prob),
        ("flip_ratio", args.flip_ratio),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    let (key, flip_prob) = match given.as_slice() {
        [] => ("flip_prob", default_prob()),
        [one] => *one,
        _ => {
            return Err(BuildError::invalid(
                node,
                Some(given[1].0),
                "give one of flip_prob (mmcls), prob (mmseg) or flip_ratio (mmdet)",
            ));
        }
    };
    if !(0.0..=1.0).contains(&flip_prob) {
        return Err(BuildError::invalid(
            node,
            Some(key),
            format!("must be in [0, 1], found {flip_prob}"),
        ));
    }
    let direction = match args.direction.as_str() {
        "horizontal" => FlipDirection::Horizontal,
        "vertical" => FlipDirection::Vertical,
        other => {
            return Err(BuildError::invalid(
                node,
                Some("direction"),
                format!("unsupported direction \"{other}\"; supported: horizontal, vertical"),
            ));
        }
    };
    Ok(Box::new(RandomFlip {
        prob: flip_prob,
        direction,
    }))
}

inventory::submit! { TransformEntry::new("RandomFlip", build) }

impl Transform for RandomFlip {
    fn apply(&self, mut r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        // mmcls: `flip = np.random.rand() < flip_prob`; one draw per sample even at p = 0 or 1,
        // so the stream of later transforms does not depend on the probability.
        let flip = rng.random::<f64>() < self.prob;
        if flip {
            geometry::flip(r, self.direction, self.name())
        } else {
            r.flip = false;
            r.flip_direction = None;
            Ok(r)
        }
    }

    fn name(&self) -> &'static str {
        "RandomFlip"
    }
}
