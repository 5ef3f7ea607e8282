//! Dotted key paths: `model.backbone.depths`, `data.train.pipeline.1`.

use toml::Value;

/// Joins key segments into the dotted form used in messages and
/// `ConfigNode::key` (list items appear as their index).
pub(crate) fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// Splits a dotted key; the empty string is the root.
pub(crate) fn split(dotted: &str) -> Vec<&str> {
    if dotted.is_empty() {
        Vec::new()
    } else {
        dotted.split('.').collect()
    }
}

/// Finds the value at `segments` below `value`.
///
/// Keys may contain dots themselves (`custom_keys."backbone.norm"`), so when
/// the plain one-segment-per-level reading fails, runs of segments are
/// re-joined and tried as single keys. Returns the real key path found.
pub(crate) fn lookup<'a>(value: &'a Value, segments: &[&str]) -> Option<(Vec<String>, &'a Value)> {
    let Some(first) = segments.first() else {
        return Some((Vec::new(), value));
    };
    match value {
        Value::Table(table) => (1..=segments.len()).find_map(|take| {
            let key = segments[..take].join(".");
            let child = table.get(&key)?;
            let (mut rest, found) = lookup(child, &segments[take..])?;
            rest.insert(0, key);
            Some((rest, found))
        }),
        Value::Array(items) => {
            let index = parse_index(first)?;
            let (mut rest, found) = lookup(items.get(index)?, &segments[1..])?;
            rest.insert(0, index.to_string());
            Some((rest, found))
        }
        _ => None,
    }
}

/// A list index segment: plain decimal digits (`1`, not `+1` or `-1`).
pub(crate) fn parse_index(segment: &str) -> Option<usize> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// TOML's name for the type of a value, for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a datetime",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_handles_dotted_keys_and_indices() {
        let value: Value = toml::from_str::<toml::Table>(
            r#"
            a = [{ b = 1 }, { c = 2 }]
            [keys]
            backbone = { lr = 1 }
            "backbone.norm" = { lr = 2 }
            "#,
        )
        .map(Value::Table)
        .unwrap();
        let (path, v) = lookup(&value, &split("a.1.c")).unwrap();
        assert_eq!(path, ["a", "1", "c"]);
        assert_eq!(v.as_integer(), Some(2));
        let (path, v) = lookup(&value, &split("keys.backbone.norm.lr")).unwrap();
        assert_eq!(path, ["keys", "backbone.norm", "lr"]);
        assert_eq!(v.as_integer(), Some(2));
        assert!(lookup(&value, &split("a.2")).is_none());
    }
}
