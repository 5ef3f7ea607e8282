//! Which file set which key.
//!
//! A config is assembled from many files; an error about
//! `model.backbone.depths` is only useful if it names the base that wrote
//! that value, not the child that inherited it. Origins are recorded per key
//! path where a file (or `--cfg-options`) placed a value; every key below
//! such a path inherits the origin unless it has its own record.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

/// Index into [`Files`].
pub(crate) type FileId = usize;

/// The files a config was assembled from, each spelled once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Files {
    paths: Vec<PathBuf>,
}

impl Files {
    /// Returns the id of `path`, adding it if new.
    pub(crate) fn intern(&mut self, path: &Path) -> FileId {
        if let Some(id) = self.paths.iter().position(|p| p == path) {
            return id;
        }
        self.paths.push(path.to_path_buf());
        self.paths.len() - 1
    }

    /// The path of `id`; `fallback` for an unknown id (never produced by
    /// this module, but a wrong file name beats a panic).
    pub(crate) fn path<'a>(&'a self, id: FileId, fallback: &'a Path) -> &'a Path {
        self.paths.get(id).map(PathBuf::as_path).unwrap_or(fallback)
    }
}

/// Origin records, keyed by key path (segments, not dotted strings: TOML
/// keys may themselves contain dots, e.g. optimizer `custom_keys`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Provenance {
    origins: BTreeMap<Vec<String>, FileId>,
}

impl Provenance {
    /// Records that `file` placed the whole value at `path`: records for
    /// keys below it are dropped, since they described the replaced value.
    pub(crate) fn set_subtree(&mut self, path: &[String], file: FileId) {
        self.remove_subtree(path);
        self.origins.insert(path.to_vec(), file);
    }

    /// Forgets `path` and everything below it (the key was removed).
    pub(crate) fn remove_subtree(&mut self, path: &[String]) {
        self.origins.remove(path);
        let below: Vec<Vec<String>> = self
            .origins
            .range::<[String], _>((Bound::Excluded(path), Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(path))
            .cloned()
            .collect();
        for key in below {
            self.origins.remove(&key);
        }
    }

    /// The origin of `path`: its own record or its nearest ancestor's.
    pub(crate) fn resolve(&self, path: &[String]) -> Option<FileId> {
        (0..=path.len())
            .rev()
            .find_map(|len| self.origins.get(&path[..len]).copied())
    }

    /// Takes over the records of another layer whose keys are disjoint from
    /// ours (sibling bases).
    pub(crate) fn absorb(&mut self, other: Provenance) {
        self.origins.extend(other.origins);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dotted: &str) -> Vec<String> {
        dotted.split('.').map(str::to_string).collect()
    }

    #[test]
    fn nearest_ancestor_and_subtree_replacement() {
        let mut prov = Provenance::default();
        prov.set_subtree(&p("model"), 0);
        prov.set_subtree(&p("model.backbone.type"), 1);
        prov.set_subtree(&p("modelx"), 2);
        assert_eq!(prov.resolve(&p("model.backbone.depths")), Some(0));
        assert_eq!(prov.resolve(&p("model.backbone.type")), Some(1));
        prov.set_subtree(&p("model.backbone"), 3);
        assert_eq!(prov.resolve(&p("model.backbone.type")), Some(3));
        assert_eq!(prov.resolve(&p("modelx")), Some(2));
        assert_eq!(prov.resolve(&p("other")), None);
    }
}
