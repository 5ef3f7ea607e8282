//! A lookup table over every key of the merged config.
//!
//! `ConfigNode` is `Copy` and hands out `&str` keys and `&Path` files that
//! live as long as the config, so both are computed once per change of the
//! config and stored here, rather than rebuilt on every call.

use std::collections::BTreeMap;

use toml::Value;

use super::keys::dotted;
use super::provenance::{FileId, Provenance};

/// What a node needs besides its value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entry {
    /// The dotted key, `""` for the root.
    pub(crate) dotted: String,
    /// The file that set this key, or its nearest ancestor.
    pub(crate) file: FileId,
}

/// One [`Entry`] per key path present in the config.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyIndex {
    /// The root's entry, kept apart so that it can be had without a lookup.
    root_path: Vec<String>,
    root: Entry,
    entries: BTreeMap<Vec<String>, Entry>,
}

impl KeyIndex {
    /// Indexes every key below `root`. Keys without a recorded origin get
    /// `default_file` (the top config file).
    pub(crate) fn build(root: &Value, provenance: &Provenance, default_file: FileId) -> Self {
        let mut index = KeyIndex::default();
        let mut path = Vec::new();
        index.add(root, provenance, default_file, &mut path);
        index.root = Entry {
            dotted: String::new(),
            file: provenance.resolve(&[]).unwrap_or(default_file),
        };
        index
    }

    fn add(
        &mut self,
        value: &Value,
        provenance: &Provenance,
        default_file: FileId,
        path: &mut Vec<String>,
    ) {
        let entry = Entry {
            dotted: dotted(path),
            file: provenance.resolve(path).unwrap_or(default_file),
        };
        self.entries.insert(path.clone(), entry);
        match value {
            Value::Table(table) => {
                for (key, child) in table {
                    path.push(key.clone());
                    self.add(child, provenance, default_file, path);
                    path.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    path.push(index.to_string());
                    self.add(child, provenance, default_file, path);
                    path.pop();
                }
            }
            _ => {}
        }
    }

    /// The root's path (empty) and entry.
    pub(crate) fn root(&self) -> (&[String], &Entry) {
        (&self.root_path, &self.root)
    }

    /// The stored path and entry for `path`.
    pub(crate) fn get(&self, path: &[String]) -> Option<(&[String], &Entry)> {
        self.entries
            .get_key_value(path)
            .map(|(key, entry)| (key.as_slice(), entry))
    }
}
