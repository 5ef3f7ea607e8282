//! mmcls annotation lists: one `<relative/image/path> <label>` per line.
//!
//! The rules (mmcls `CustomDataset.load_annotations` plus the Mona repository's change):
//! - each line is stripped of surrounding whitespace and split at its **last** space, so paths
//!   may contain spaces;
//! - blank lines are skipped;
//! - the label is a 0-based integer; a comma list (`3,7,12`, VOC's multi-label lines) keeps
//!   only its first entry;
//! - anything else (no space, a label that is not a non-negative integer) is an error naming
//!   the file and the 1-based line; so are labels not below the number of classes, when the
//!   classes are known, and a file without any sample.

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// One annotated image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// The path as written (relative to `data_prefix`).
    pub filename: String,
    /// 0-based class index.
    pub label: usize,
}

/// Reads and parses the annotation file at `path`; see the module docs for the rules.
/// `num_classes`, when given, bounds the labels.
pub fn read_ann_file(path: &Path, num_classes: Option<usize>) -> Result<Vec<Sample>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        what: "annotation file",
        path: path.to_path_buf(),
        source,
    })?;
    parse_ann_text(path, &text, num_classes)
}

/// Parses annotation text; `path` is only used in error messages.
pub fn parse_ann_text(
    path: &Path,
    text: &str,
    num_classes: Option<usize>,
) -> Result<Vec<Sample>, DataError> {
    let mut samples = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim();
        if content.is_empty() {
            continue;
        }
        let sample = parse_line(path, line, content)?;
        if let Some(n) = num_classes
            && sample.label >= n
        {
            return Err(DataError::LabelOutOfRange {
                path: path.to_path_buf(),
                line,
                label: sample.label,
                num_classes: n,
            });
        }
        samples.push(sample);
    }
    if samples.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            message: "the annotation file lists no samples".to_string(),
        });
    }
    Ok(samples)
}

fn parse_line(path: &Path, line: usize, content: &str) -> Result<Sample, DataError> {
    let err = |message: String| DataError::line(PathBuf::from(path), line, message);
    let Some((filename, label_field)) = content.rsplit_once(' ') else {
        return Err(err(format!(
            "expected `<image path> <label>`, found \"{content}\" (no space)"
        )));
    };
    let first = label_field.split(',').next().unwrap_or_default();
    let label = first.parse::<usize>().map_err(|_| {
        err(format!(
            "expected a non-negative integer label (or a comma list of them) after the last \
             space, found \"{label_field}\""
        ))
    })?;
    if filename.is_empty() {
        return Err(err(format!(
            "missing image path before the label in \"{content}\""
        )));
    }
    Ok(Sample {
        filename: filename.to_string(),
        label,
    })
}
