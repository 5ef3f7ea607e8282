//! `AutoAugment` (mmdet 2.x, `mmdet/datasets/pipelines/auto_augment.py`): a list of
//! policies, each a list of transforms; every sample runs one policy, chosen uniformly.
//!
//! mmdet asserts that `policies` is a non-empty list of non-empty lists of dicts with a
//! `type`, builds each policy as a `Compose`, and per call picks one with
//! `np.random.choice(self.transforms)`. Here each policy is a [`Pipeline`] built through the
//! transform registry (so errors name the inner key, e.g.
//! `data.train.pipeline.3.policies.1.1.crop_size`), and the choice is one uniform draw from
//! the sample's [`DataRng`] before the policy's own draws, which keeps pipelines
//! deterministic. The DETR / Sparse R-CNN multi-scale-and-crop augmentation of the Mona COCO
//! config is written with it.

use mona_core::config::ConfigNode;
use mona_core::registry::BuildError;
use rand::Rng;

use super::{Pipeline, Transform, TransformEntry, build_pipeline};
use crate::error::DataError;
use crate::results::Results;
use crate::rng::DataRng;

/// One of several pipelines per sample.
#[derive(Debug)]
pub struct AutoAugment {
    /// The policies, in config order; never empty, none empty.
    pub policies: Vec<Pipeline>,
}

fn build(node: &ConfigNode<'_>) -> Result<Box<dyn Transform>, BuildError> {
    if let Some(table) = node.value().as_table()
        && let Some(key) = table
            .keys()
            .find(|k| !matches!(k.as_str(), "type" | "policies"))
    {
        return Err(BuildError::invalid(
            node,
            Some(key),
            "unknown argument of AutoAugment (it takes only policies)",
        ));
    }
    let list = node.child("policies")?;
    if list.items().is_empty() {
        return Err(BuildError::invalid(
            &list,
            None,
            "policies must be a non-empty list of lists of transforms",
        ));
    }
    let mut policies = Vec::new();
    for policy in list.items() {
        let pipeline = build_pipeline(&policy)?;
        if pipeline.is_empty() {
            return Err(BuildError::invalid(
                &policy,
                None,
                "each policy must be a non-empty list of transforms",
            ));
        }
        policies.push(pipeline);
    }
    Ok(Box::new(AutoAugment { policies }))
}

inventory::submit! { TransformEntry::new("AutoAugment", build) }

impl AutoAugment {
    /// The policy a sample runs: mmdet `np.random.choice`, uniform over the policies.
    pub fn choose(&self, rng: &mut DataRng) -> usize {
        rng.random_range(0..self.policies.len())
    }
}

impl Transform for AutoAugment {
    fn apply(&self, r: Results, rng: &mut DataRng) -> Result<Results, DataError> {
        if self.policies.is_empty() {
            return Err(r.error(self.name(), "no policies"));
        }
        let i = self.choose(rng);
        self.policies[i].apply(r, rng)
    }

    fn name(&self) -> &'static str {
        "AutoAugment"
    }
}
