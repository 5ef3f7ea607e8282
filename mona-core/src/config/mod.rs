//! Layered configs with mmcv 1.x semantics, written in TOML.
//!
//! * `load`: reading files and resolving `_base_` (recursive, relative to
//!   the declaring file, sibling bases may not share top-level keys, cycles
//!   are errors);
//! * `merge`: the recursive merge (tables merge, everything else replaces,
//!   `_delete_ = true`);
//! * `options`: `--cfg-options a.b.c=value` with mmcv's value parsing;
//! * `provenance` and `index`: which file set which key, so every error
//!   names the file and the dotted key;
//! * `node` and `extract`: navigation and typed extraction through
//!   figment;
//! * `dump`: the merged config as readable TOML;
//! * `unknown_keys`: keys no component reads (typos), for a warning or `--strict`.
//!
//! Provenance rule: a key's file is the last file that placed its value
//! (a child overriding it, `--cfg-options` for overrides); a table that was
//! merged key by key keeps the file that first declared it, and keys with no
//! record of their own (list items, untouched children) inherit their
//! nearest parent's file.
//!
//! Keys are addressed as dotted paths (`data.train.pipeline.1.type`). TOML
//! keys may contain dots (`custom_keys."backbone.norm"`); lookups fall back
//! to reading runs of segments as one key, while `--cfg-options` splits on
//! every dot exactly like mmcv.

mod dump;
mod error;
mod extract;
mod index;
mod keys;
mod load;
mod merge;
mod node;
mod options;
mod paths;
mod provenance;
mod unknown_keys;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::Value;

pub use error::ConfigError;
pub use node::ConfigNode;
pub use options::OPTIONS_SOURCE;
pub use unknown_keys::{UnknownKey, unknown_keys};

use index::KeyIndex;
use provenance::{Files, Provenance};

/// A fully merged config: the content of the top file and all its bases,
/// plus `--cfg-options`, with the origin of every key.
#[derive(Clone, Debug)]
pub struct Config {
    /// The top config file, as given (cleaned of `.`/`..`).
    path: PathBuf,
    /// Always a `Value::Table`; kept as a `Value` so the root can be a node.
    root: Value,
    files: Files,
    provenance: Provenance,
    index: KeyIndex,
}

impl Config {
    /// Reads a TOML config file, resolving `_base_` recursively.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Self::build(path.as_ref(), None)
    }

    /// Parses TOML text as if it were the file `path`: bases are resolved
    /// relative to `path`'s folder, and errors name `path`.
    pub fn from_str_at(text: &str, path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        Self::build(path.as_ref(), Some(text))
    }

    fn build(path: &Path, text: Option<&str>) -> Result<Config, ConfigError> {
        let loaded = load::load(path, text)?;
        let mut config = Config {
            path: paths::normalize(path),
            root: Value::Table(loaded.layer.table),
            files: loaded.files,
            provenance: loaded.layer.provenance,
            index: KeyIndex::default(),
        };
        config.reindex();
        Ok(config)
    }

    /// Applies mmcv `--cfg-options` items (`a.b.c=value`), in order. Either
    /// all items apply or, on error, the config is left unchanged.
    pub fn apply_options<S: AsRef<str>>(&mut self, options: &[S]) -> Result<(), ConfigError> {
        let parsed = options
            .iter()
            .map(|item| options::parse_option(item.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if parsed.is_empty() {
            return Ok(());
        }
        let mut root = self.root.clone();
        let mut provenance = self.provenance.clone();
        let mut files = self.files.clone();
        let source = files.intern(Path::new(OPTIONS_SOURCE));
        options::apply(&mut root, &mut provenance, &files, source, &parsed)?;
        self.root = root;
        self.provenance = provenance;
        self.files = files;
        self.reindex();
        Ok(())
    }

    fn reindex(&mut self) {
        let top = self.files.intern(&self.path);
        self.index = KeyIndex::build(&self.root, &self.provenance, top);
    }

    /// The top config file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The merged content, without `_base_` and `_delete_` keys.
    pub fn table(&self) -> &toml::Table {
        static EMPTY: std::sync::OnceLock<toml::Table> = std::sync::OnceLock::new();
        match &self.root {
            Value::Table(table) => table,
            // Never happens: the root is always built as a table.
            _ => EMPTY.get_or_init(toml::Table::new),
        }
    }

    /// The root node (key `""`).
    pub fn root(&self) -> ConfigNode<'_> {
        ConfigNode::root(self)
    }

    /// The node at a dotted key (`model.backbone`, `data.train.pipeline.1`).
    pub fn get(&self, dotted: &str) -> Option<ConfigNode<'_>> {
        let (path, value) = keys::lookup(&self.root, &keys::split(dotted))?;
        ConfigNode::at(self, &path, value)
    }

    /// Like [`get`](Self::get), but a missing key is an error naming the key
    /// and the file that set its nearest existing parent.
    pub fn node(&self, dotted: &str) -> Result<ConfigNode<'_>, ConfigError> {
        self.get(dotted).ok_or_else(|| {
            let nearest = self.root().descend(&keys::split(dotted));
            ConfigError::MissingKey {
                file: nearest.file().to_path_buf(),
                key: dotted.to_string(),
            }
        })
    }

    /// Deserializes the value at a dotted key (`""` for the whole config).
    pub fn extract<T: DeserializeOwned>(&self, dotted: &str) -> Result<T, ConfigError> {
        self.node(dotted)?.extract()
    }

    /// The fully merged config as TOML (see the `dump` module for the
    /// layout). Parsing it back gives an equal table.
    pub fn to_toml_string(&self) -> String {
        dump::to_toml_string(self.table())
    }
}
