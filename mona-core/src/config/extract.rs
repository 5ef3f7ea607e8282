//! Typed extraction through figment.
//!
//! figment gives precise serde errors (expected/found types, missing and
//! unknown fields) with the path inside the extracted value; we prefix that
//! path with the node's key and look up which file set the offending key.

use figment::Figment;
use figment::providers::Serialized;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use toml::Value;

/// figment only extracts tables, so every value is wrapped under this key.
const WRAP_KEY: &str = "value";

#[derive(Deserialize)]
struct Wrapped<T> {
    value: T,
}

/// Why a value did not deserialize: the path of the offending part inside it, and what
/// was wrong (the caller names the key and the file).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExtractFailure {
    pub path: Vec<String>,
    pub message: String,
}

/// Deserializes `value` into `T`.
pub(crate) fn extract<T: DeserializeOwned>(value: &Value) -> Result<T, ExtractFailure> {
    let figment = Figment::from(Serialized::default(WRAP_KEY, value));
    figment
        .extract::<Wrapped<T>>()
        .map(|wrapped| wrapped.value)
        .map_err(failure)
}

fn failure(error: figment::Error) -> ExtractFailure {
    let mut errors = error.into_iter();
    let Some(first) = errors.next() else {
        return ExtractFailure {
            path: Vec::new(),
            message: "cannot extract the value (figment gave no details)".into(),
        };
    };
    let more = errors.count();
    let path = match first.path.split_first() {
        Some((head, rest)) if head == WRAP_KEY => rest.to_vec(),
        _ => first.path.clone(),
    };
    let mut message = first.kind.to_string();
    if more > 0 {
        message.push_str(&format!(
            " (and {more} more error{})",
            if more == 1 { "" } else { "s" }
        ));
    }
    ExtractFailure { path, message }
}
