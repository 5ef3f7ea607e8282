//! Path spelling and identity.
//!
//! Paths are shown to users (errors, `ConfigNode::file`) in the spelling the
//! configs use, cleaned of `.` and `..`, so `a/b/../../_base_/x.toml` reads
//! `_base_/x.toml`. Cycle detection needs a stronger notion, the canonical
//! path, so that two spellings of one file are recognised.

use std::path::{Component, Path, PathBuf};

/// Removes `.` components and folds `name/..` pairs, without touching the
/// file system (a leading `..` that cannot be folded is kept).
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// What makes two paths the same file: the canonical path when the file
/// exists, else the cleaned absolute path (a `from_str_at` top file need not
/// exist on disk).
pub(crate) fn identity(path: &Path) -> PathBuf {
    match std::fs::canonicalize(path) {
        Ok(canonical) => canonical,
        Err(_) => std::path::absolute(path)
            .map(|p| normalize(&p))
            .unwrap_or_else(|_| normalize(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_parent_components() {
        assert_eq!(
            normalize(Path::new("a/b/c/../../_base_/./x.toml")),
            PathBuf::from("a/_base_/x.toml")
        );
        assert_eq!(
            normalize(Path::new("../x.toml")),
            PathBuf::from("../x.toml")
        );
        assert_eq!(normalize(Path::new("/../x.toml")), PathBuf::from("/x.toml"));
        assert_eq!(normalize(Path::new("a/..")), PathBuf::from("."));
    }
}
