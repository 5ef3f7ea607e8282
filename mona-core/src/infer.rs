//! `infer`: a trained model on a user's own images, one image at a time. Each task crate
//! implements [`crate::task::TaskFns::infer`] with its own predictor (detection boxes,
//! segmentation label maps, classification scores); this module holds what they share: the
//! arguments, the loop with its progress bar, and the rule that one bad image is reported and
//! the others still processed.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::runner::BoxError;
use crate::task::TestArgs;

/// What `infer` was given besides the config and the images.
#[derive(Debug, Clone)]
pub struct InferArgs {
    /// A training checkpoint, an adapter file, or a state dict.
    pub checkpoint: PathBuf,
    /// Pretrained backbone weights under an adapter file (defaults to `load_from`).
    pub load_from: Option<PathBuf>,
    /// Where the drawings and JSON records go (created if missing).
    pub out_dir: PathBuf,
    /// Detection: the lowest score a drawn box has.
    pub score_thr: f32,
    pub device: Device,
}

impl InferArgs {
    /// Creates `out_dir` (and its parents) if missing.
    pub fn create_out_dir(&self) -> Result<(), crate::task::TaskError> {
        std::fs::create_dir_all(&self.out_dir).map_err(|source| crate::task::TaskError::Io {
            path: self.out_dir.clone(),
            source,
        })
    }

    /// The same checkpoint as `test` would load it.
    pub fn test_args(&self) -> TestArgs {
        TestArgs {
            checkpoint: self.checkpoint.clone(),
            load_from: self.load_from.clone(),
            metrics: Vec::new(),
            out: None,
            show_dir: None,
            show_score_thr: self.score_thr,
            format_only: false,
            eval_options: Default::default(),
            aug_test: false,
            device: self.device.clone(),
            process: None,
        }
    }
}

/// An image (or input) that could not be predicted, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InferFailure {
    pub path: PathBuf,
    pub error: String,
}

/// What `infer` did: the images predicted and those that failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferReport {
    pub done: Vec<PathBuf>,
    pub failed: Vec<InferFailure>,
}

/// Class names `class 0`, `class 1`, ... for a model of `n` classes whose names are unknown
/// (its config's test set cannot be read: `why`), with a warning saying so.
pub fn numbered_classes(n: usize, why: impl std::fmt::Display) -> Vec<String> {
    tracing::warn!(
        "class names are neither stored in the checkpoint nor readable from data.test ({why}); numbering them"
    );
    (0..n).map(|c| format!("class {c}")).collect()
}

/// The names of a model's `n` classes, as mmdet's `init_detector` finds them: those stored
/// in `checkpoint` (training checkpoints and adapter files carry them), else those of
/// `from_data` (the config's test set), else numbered with a warning. Names whose count is
/// not `n` are passed over.
pub fn model_classes<E: std::fmt::Display>(
    checkpoint: &Path,
    n: usize,
    from_data: impl FnOnce() -> Result<Vec<String>, E>,
) -> Vec<String> {
    match crate::checkpoint::stored_classes(checkpoint) {
        Ok(Some(stored)) if stored.len() == n => return stored,
        Ok(Some(stored)) => tracing::warn!(
            "{}: stores {} class names for a model of {n} classes; not used",
            checkpoint.display(),
            stored.len()
        ),
        _ => {}
    }
    match from_data() {
        Ok(named) if named.len() == n => named,
        Ok(named) => numbered_classes(n, format!("{} names for {n} outputs", named.len())),
        Err(e) => numbered_classes(n, e),
    }
}

/// One image to predict: its file, its 1-based position among the inputs (the `image_id` of
/// detection records) and the stem its outputs are named after (`out_dir/<stem>.json`, ...),
/// unique among the inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct InferItem<'a> {
    pub path: &'a Path,
    pub image_id: u64,
    pub stem: String,
}

/// Runs `predict` on every image, with a progress bar on a terminal. An image whose
/// prediction fails is logged (naming the file) and recorded; the others go on.
pub fn infer_each(
    images: &[PathBuf],
    mut predict: impl FnMut(&InferItem<'_>) -> Result<(), BoxError>,
) -> InferReport {
    let bar = crate::runner::logger::progress_bar(images.len() as u64, "images");
    let mut report = InferReport::default();
    let mut stems = HashSet::new();
    for (i, path) in images.iter().enumerate() {
        let item = InferItem {
            path,
            image_id: i as u64 + 1,
            stem: unique_stem(path, &mut stems),
        };
        match predict(&item) {
            Ok(()) => report.done.push(path.clone()),
            Err(e) => {
                bar.suspend(|| tracing::error!("{}: {e}", path.display()));
                report.failed.push(InferFailure {
                    path: path.clone(),
                    error: e.to_string(),
                });
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    report
}

/// The file stem of `path`, with `_2`, `_3`, ... when an earlier input had the same one (two
/// folders with an `img.jpg` each), so no output is written over another.
fn unique_stem(path: &Path, taken: &mut HashSet<String>) -> String {
    let stem = path
        .file_stem()
        .map_or_else(|| "image".to_string(), |s| s.to_string_lossy().into_owned());
    let mut candidate = stem.clone();
    let mut n = 2;
    while !taken.insert(candidate.clone()) {
        candidate = format!("{stem}_{n}");
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stems_get_suffixes_and_failures_do_not_stop_the_rest() {
        let images = [
            PathBuf::from("a/img.jpg"),
            PathBuf::from("b/img.png"),
            PathBuf::from("c/bad.jpg"),
            PathBuf::from("d/img.jpg"),
        ];
        let mut seen = Vec::new();
        let report = infer_each(&images, |item| {
            seen.push((item.image_id, item.stem.clone()));
            if item.path.ends_with("bad.jpg") {
                return Err("not an image".into());
            }
            Ok(())
        });
        assert_eq!(
            seen,
            [
                (1, "img".to_string()),
                (2, "img_2".to_string()),
                (3, "bad".to_string()),
                (4, "img_3".to_string()),
            ]
        );
        assert_eq!(report.done.len(), 3);
        assert_eq!(
            report.failed,
            [InferFailure {
                path: PathBuf::from("c/bad.jpg"),
                error: "not an image".into()
            }]
        );
    }
}
