//! Image folders: `root/<class name>/<image>` (mmcls `CustomDataset` without `ann_file`).
//!
//! Classes are the sub-folders of `root` sorted by name (byte order, as Python sorts `str`),
//! labelled 0, 1, ... in that order; each class's images are its files with an image extension
//! (case-insensitive), sorted by name. Only files directly inside a class folder count: mmcls
//! walks sub-folders too but then records paths without the sub-folder, so such files could
//! never be opened there.

use std::path::Path;

use super::ann_file::Sample;
use crate::error::DataError;

/// Extensions taken as images (those `image` decodes with our features).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp"];

/// The classes (sorted folder names) and samples (`<class>/<file>`, label) under `root`.
pub fn scan_image_folder(root: &Path) -> Result<(Vec<String>, Vec<Sample>), DataError> {
    let io = |source, path: &Path| DataError::Io {
        what: "image folder",
        path: path.to_path_buf(),
        source,
    };
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| io(e, root))? {
        let entry = entry.map_err(|e| io(e, root))?;
        // Follows symlinks, like os.scandir().is_dir().
        if entry.path().is_dir() {
            classes.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    let mut samples = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let dir = root.join(class);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| io(e, &dir))? {
            let entry = entry.map_err(|e| io(e, &dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.path().is_file() && has_image_extension(&name) {
                files.push(name);
            }
        }
        files.sort();
        samples.extend(files.into_iter().map(|f| Sample {
            filename: format!("{class}/{f}"),
            label,
        }));
    }
    if samples.is_empty() {
        return Err(DataError::Empty {
            path: root.to_path_buf(),
            message: format!(
                "found no images ({}) in class sub-folders",
                IMAGE_EXTENSIONS.join(", ")
            ),
        });
    }
    Ok((classes, samples))
}

fn has_image_extension(name: &str) -> bool {
    let lower = name.to_lowercase();
    IMAGE_EXTENSIONS
        .iter()
        .any(|ext| lower.ends_with(&format!(".{ext}")))
}
