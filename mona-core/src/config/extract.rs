//! Typed extraction through figment.
//!
//! figment gives precise serde errors (expected/found types, missing and
//! unknown fields) with the path inside the extracted value; we prefix that
//! path with the node's key and look up which file set the offending key.

use figment::Figment;
use figment::providers::Serialized;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ConfigError;
use super::node::ConfigNode;

/// figment only extracts tables, so every value is wrapped under this key.
const WRAP_KEY: &str = "value";

#[derive(Deserialize)]
struct Wrapped<T> {
    value: T,
}

/// Deserializes the value of `node` into `T`.
pub(crate) fn extract<T: DeserializeOwned>(node: &ConfigNode<'_>) -> Result<T, ConfigError> {
    let figment = Figment::from(Serialized::default(WRAP_KEY, node.value()));
    figment
        .extract::<Wrapped<T>>()
        .map(|wrapped| wrapped.value)
        .map_err(|error| to_config_error(node, error))
}

fn to_config_error(node: &ConfigNode<'_>, error: figment::Error) -> ConfigError {
    let mut errors = error.into_iter();
    let Some(first) = errors.next() else {
        return node.invalid("cannot extract the value (figment gave no details)");
    };
    let more = errors.count();
    let inner: Vec<&str> = match first.path.split_first() {
        Some((head, rest)) if head == WRAP_KEY => rest.iter().map(String::as_str).collect(),
        _ => first.path.iter().map(String::as_str).collect(),
    };
    // The deepest existing key along the error path names the file.
    let culprit = node.descend(&inner);
    let mut key = node.key().to_string();
    for segment in &inner {
        if !key.is_empty() {
            key.push('.');
        }
        key.push_str(segment);
    }
    let mut message = first.kind.to_string();
    if more > 0 {
        message.push_str(&format!(
            " (and {more} more error{})",
            if more == 1 { "" } else { "s" }
        ));
    }
    ConfigError::Extract {
        file: culprit.file().to_path_buf(),
        key,
        message,
    }
}
