//! Class names: the presets of the Mona datasets and class-list files.

use std::path::Path;

use crate::error::DataError;

/// `OxfordFlowerMona.CLASSES`: 102 classes named "0".."101".
pub fn flower_classes() -> Vec<String> {
    (0..102).map(|i| i.to_string()).collect()
}

/// `OxfordPetMona`: 37 classes. The official class tuple is not in the spec; like the
/// Flowers preset they are named by index, "0".."36" (names only affect display).
pub fn pet_classes() -> Vec<String> {
    (0..37).map(|i| i.to_string()).collect()
}

/// `VOCMona.CLASSES`: the 20 PASCAL VOC classes in their standard order.
pub fn voc_classes() -> Vec<String> {
    [
        "aeroplane",
        "bicycle",
        "bird",
        "boat",
        "bottle",
        "bus",
        "car",
        "cat",
        "chair",
        "cow",
        "diningtable",
        "dog",
        "horse",
        "motorbike",
        "person",
        "pottedplant",
        "sheep",
        "sofa",
        "train",
        "tvmonitor",
    ]
    .map(String::from)
    .to_vec()
}

/// Reads a class list: one name per line (mmcv `list_from_file`, line endings stripped).
/// Trailing blank lines are ignored; a blank line between names would silently shift every
/// later label, so it is an error naming the line, as is a file with no names.
pub fn read_class_file(path: &Path) -> Result<Vec<String>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        what: "class file",
        path: path.to_path_buf(),
        source,
    })?;
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let used = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    if used == 0 {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            message: "the class file lists no classes".to_string(),
        });
    }
    lines[..used]
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if l.trim().is_empty() {
                Err(DataError::line(path, i + 1, "blank class name"))
            } else {
                Ok((*l).to_string())
            }
        })
        .collect()
}
