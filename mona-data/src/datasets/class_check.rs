//! A head's class count against the dataset it trains or is tested on, checked before the
//! first batch: a head with fewer outputs than the dataset has classes would index past its
//! logits in the loss (a panic deep inside the backend), and a detector whose class count
//! differs from its dataset's scores the wrong classes (mmdet's `NumClassCheckHook`).

use super::Dataset;
use crate::error::DataError;

/// How a head's output count must relate to the dataset's classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassRule {
    /// At least as many outputs as classes (classification, segmentation: extra outputs
    /// are never a target, as in mmcls and mmseg).
    AtLeast,
    /// Exactly as many (detection, as mmdet requires).
    Exactly,
}

/// Checks `num_classes` (set at `head_key`) against the dataset of `data_key`: its class
/// names when it has them, else its largest label.
pub fn check_head_classes(
    head_key: &str,
    num_classes: usize,
    data_key: &str,
    dataset: &dyn Dataset,
    rule: ClassRule,
) -> Result<(), DataError> {
    let named = dataset.classes().len();
    let (have, found) = if named > 0 {
        (
            named,
            format!("has {named} class{}", if named == 1 { "" } else { "es" }),
        )
    } else {
        match dataset.gt_labels().into_iter().max() {
            Some(max) => (max + 1, format!("has labels up to {max}")),
            None => return Ok(()),
        }
    };
    let fits = match rule {
        ClassRule::AtLeast => num_classes >= have,
        ClassRule::Exactly => num_classes == have,
    };
    if fits {
        return Ok(());
    }
    Err(DataError::HeadClasses {
        head_key: head_key.to_string(),
        num_classes,
        data_key: data_key.to_string(),
        found,
        needed: have,
    })
}
