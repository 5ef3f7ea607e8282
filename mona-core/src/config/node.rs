//! `ConfigNode`: a borrowed view of one key of a merged config, which knows
//! its dotted key and the file that set it, so every error raised while
//! interpreting it can say where to look.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Value;

use super::Config;
use super::error::ConfigError;
use super::extract::{self, ExtractFailure};
use super::index::Entry;
use super::keys::{lookup, parse_index, split, type_name};

/// One key of a [`Config`]: its value, full dotted key and origin file.
#[derive(Clone, Copy)]
pub struct ConfigNode<'a> {
    config: &'a Config,
    path: &'a [String],
    entry: &'a Entry,
    value: &'a Value,
}

impl<'a> ConfigNode<'a> {
    /// The node at `path` (a real key path of `config`) with value `value`.
    pub(crate) fn at(config: &'a Config, path: &[String], value: &'a Value) -> Option<Self> {
        let (path, entry) = config.index.get(path)?;
        Some(ConfigNode {
            config,
            path,
            entry,
            value,
        })
    }

    /// The root node of `config`.
    pub(crate) fn root(config: &'a Config) -> Self {
        let (path, entry) = config.index.root();
        ConfigNode {
            config,
            path,
            entry,
            value: &config.root,
        }
    }

    /// The full dotted key, `""` for the root; list items appear as their
    /// index (`data.train.pipeline.1`).
    pub fn key(&self) -> &'a str {
        &self.entry.dotted
    }

    /// The file that set this key (or the nearest parent key that has a
    /// recorded origin); `--cfg-options` for command-line overrides.
    pub fn file(&self) -> &'a Path {
        self.config.files.path(self.entry.file, &self.config.path)
    }

    /// The TOML value.
    pub fn value(&self) -> &'a Value {
        self.value
    }

    /// A child of a table, or an element of an array (`"1"`). A dotted
    /// relative path (`"backbone.depths"`) is followed too; an exact key
    /// containing dots wins over the nested reading.
    pub fn get(&self, child: &str) -> Option<ConfigNode<'a>> {
        if let Value::Table(table) = self.value
            && let Some(value) = table.get(child)
        {
            return self.below(&[child.to_string()], value);
        }
        let (relative, value) = lookup(self.value, &split(child))?;
        self.below(&relative, value)
    }

    /// Like [`get`](Self::get), but a missing child is an error naming this
    /// node's file and the full key.
    pub fn child(&self, child: &str) -> Result<ConfigNode<'a>, ConfigError> {
        self.get(child).ok_or_else(|| ConfigError::MissingKey {
            file: self.file().to_path_buf(),
            key: self.join(child),
        })
    }

    /// The elements of an array node; empty for anything else.
    pub fn items(&self) -> Vec<ConfigNode<'a>> {
        match self.value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .filter_map(|(index, value)| self.below(&[index.to_string()], value))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The string at `type`, the registry name of what this node describes.
    pub fn type_name(&self) -> Result<&'a str, ConfigError> {
        let Value::Table(_) = self.value else {
            return Err(self.invalid(format!(
                "expected a table with a `type` key, found {}",
                type_name(self.value)
            )));
        };
        let node = self.child("type")?;
        node.value.as_str().ok_or_else(|| {
            node.invalid(format!(
                "expected a string, found {}",
                type_name(node.value)
            ))
        })
    }

    /// Deserializes this node through figment. Errors carry the full dotted
    /// key of the offending value (`model.backbone.depths`) and its file.
    pub fn extract<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        extract::extract(self.value).map_err(|failure| self.extract_error(failure))
    }

    /// The error of a failed extraction: the key of the offending value under this node,
    /// and the file that set the deepest existing key along its path.
    fn extract_error(&self, failure: ExtractFailure) -> ConfigError {
        let inner: Vec<&str> = failure.path.iter().map(String::as_str).collect();
        let culprit = self.descend(&inner);
        let mut key = self.key().to_string();
        for segment in &inner {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
        ConfigError::Extract {
            file: culprit.file().to_path_buf(),
            key,
            message: failure.message,
        }
    }

    /// Deserializes the child `child` if it is present.
    pub fn extract_field<T: DeserializeOwned>(
        &self,
        child: &str,
    ) -> Result<Option<T>, ConfigError> {
        self.get(child).map(|node| node.extract()).transpose()
    }

    /// A [`ConfigError::Invalid`] about this node, for code interpreting the
    /// config (registries, builders).
    pub fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file().to_path_buf(),
            key: self.key().to_string(),
            message: message.into(),
        }
    }

    /// The config this node belongs to.
    pub fn config(&self) -> &'a Config {
        self.config
    }

    /// Follows exact key segments as far as they exist and returns the
    /// deepest node reached (this node if none does).
    pub(crate) fn descend(&self, segments: &[&str]) -> ConfigNode<'a> {
        let mut node = *self;
        for segment in segments {
            let next = match node.value {
                Value::Table(table) => table
                    .get(*segment)
                    .and_then(|v| node.below(&[(*segment).to_string()], v)),
                Value::Array(items) => parse_index(segment)
                    .and_then(|i| Some((i, items.get(i)?)))
                    .and_then(|(i, v)| node.below(&[i.to_string()], v)),
                _ => None,
            };
            match next {
                Some(next) => node = next,
                None => break,
            }
        }
        node
    }

    fn below(&self, relative: &[String], value: &'a Value) -> Option<ConfigNode<'a>> {
        let mut path = self.path.to_vec();
        path.extend_from_slice(relative);
        ConfigNode::at(self.config, &path, value)
    }

    fn join(&self, child: &str) -> String {
        if self.key().is_empty() {
            child.to_string()
        } else {
            format!("{}.{child}", self.key())
        }
    }
}

impl std::fmt::Debug for ConfigNode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigNode")
            .field("key", &self.key())
            .field("file", &self.file())
            .field("value", self.value)
            .finish()
    }
}
