//! `--cfg-options`: mmcv's `DictAction` value parsing and
//! `Config.merge_from_dict`.
//!
//! An item is `a.b.c=value`. Missing tables along the path are created, a
//! numeric segment indexes into an existing array (only that element
//! changes), and the value is parsed the way mmcv does it:
//!
//! * quotes (`'`/`"`) around the whole value are stripped, then every space
//!   is removed (yes, also inside strings: that is mmcv's behaviour);
//! * `[a,b]` and `(a,b)` are lists, brackets nest (`[(1,2),(3,4)]`), and a
//!   comma outside brackets makes a list too (`1,2,3`);
//! * each scalar is tried as an integer, then a float (`1e-4`, `-0.5`,
//!   `inf`), then a boolean (`true`/`false`, any case), else it is a string;
//! * `None` (exactly, as in mmcv) sets the key to "no value". TOML has no
//!   null, and our typed structs read a missing key as `None`, so the key is
//!   removed. `none` stays a string, because mmcv keeps it one and losses use
//!   `reduction='none'`. `None` inside a list, or for a list element, is an
//!   error (there is no way to store it).

use toml::Value;

use super::error::ConfigError;
use super::keys::{dotted, parse_index};
use super::provenance::{FileId, Files, Provenance};

/// The pseudo file recorded as the origin of overridden keys.
pub const OPTIONS_SOURCE: &str = "--cfg-options";

/// Deepest bracket nesting accepted in a value (mmcv would hit Python's
/// recursion limit; we refuse politely instead).
const MAX_DEPTH: usize = 64;

/// One parsed `key=value` item.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConfigOption {
    pub(crate) text: String,
    pub(crate) path: Vec<String>,
    /// `None` means "remove the key" (mmcv's `None`).
    pub(crate) value: Option<Value>,
}

/// Parses one `--cfg-options` item.
pub(crate) fn parse_option(item: &str) -> Result<ConfigOption, ConfigError> {
    let bad = |message: &str| ConfigError::BadOption {
        option: item.to_string(),
        message: message.to_string(),
    };
    let Some((key, raw)) = item.split_once('=') else {
        return Err(bad("expected `key=value` (no `=` found)"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(bad("the key before `=` is empty"));
    }
    let path: Vec<String> = key.split('.').map(str::to_string).collect();
    if path.iter().any(String::is_empty) {
        return Err(bad(
            "the key has an empty segment (`..` or a leading/trailing `.`)",
        ));
    }
    let value = match parse_value(raw).map_err(|message| bad(&message))? {
        Parsed::None => None,
        other => Some(other.into_toml().map_err(|message| bad(&message))?),
    };
    Ok(ConfigOption {
        text: item.to_string(),
        path,
        value,
    })
}

/// A value as mmcv's `DictAction` produces it, before conversion to TOML.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Parsed {
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    Str(String),
    List(Vec<Parsed>),
}

impl Parsed {
    fn into_toml(self) -> Result<Value, String> {
        Ok(match self {
            Parsed::Int(i) => Value::Integer(i),
            Parsed::Float(f) => Value::Float(f),
            Parsed::Bool(b) => Value::Boolean(b),
            Parsed::Str(s) => Value::String(s),
            Parsed::List(items) => Value::Array(
                items
                    .into_iter()
                    .map(Parsed::into_toml)
                    .collect::<Result<_, _>>()?,
            ),
            Parsed::None => {
                return Err("`None` inside a list cannot be stored in TOML".to_string());
            }
        })
    }
}

/// mmcv `DictAction._parse_iterable`.
pub(crate) fn parse_value(raw: &str) -> Result<Parsed, String> {
    parse_iterable(raw, 0)
}

fn parse_iterable(raw: &str, depth: usize) -> Result<Parsed, String> {
    if depth > MAX_DEPTH {
        return Err(format!("brackets nest deeper than {MAX_DEPTH} levels"));
    }
    let val = raw.trim_matches(['\'', '"']).replace(' ', "");
    let bracketed = (val.starts_with('(') && val.ends_with(')'))
        || (val.starts_with('[') && val.ends_with(']'));
    // (A tuple becomes a list too: TOML has only arrays.)
    let (inner, bracketed) = if bracketed && val.len() >= 2 {
        (&val[1..val.len() - 1], true)
    } else if !val.contains(',') {
        return Ok(parse_scalar(&val));
    } else {
        (val.as_str(), false)
    };
    let mut values = Vec::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let end = find_next_comma(rest)?;
        let element = &rest[..end];
        if !bracketed && element == val {
            // mmcv recurses on the same text forever here.
            return Err(format!("cannot split `{val}` into list elements"));
        }
        values.push(parse_iterable(element, depth + 1)?);
        rest = rest.get(end + 1..).unwrap_or("");
    }
    Ok(Parsed::List(values))
}

/// Byte index of the first comma with balanced brackets before it, or the
/// length of `text` (mmcv `find_next_comma`, counts and all).
fn find_next_comma(text: &str) -> Result<usize, String> {
    let count = |c: char| text.chars().filter(|&x| x == c).count();
    if count('(') != count(')') || count('[') != count(']') {
        return Err(format!("imbalanced brackets in `{text}`"));
    }
    let (mut parens, mut brackets) = (0i64, 0i64);
    for (index, c) in text.char_indices() {
        match c {
            ',' if parens == 0 && brackets == 0 => return Ok(index),
            '(' => parens += 1,
            ')' => parens -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            _ => {}
        }
    }
    Ok(text.len())
}

/// mmcv `DictAction._parse_int_float_bool`: Python's `int()`, then
/// `float()`, then booleans, then `None`, else the string itself.
fn parse_scalar(val: &str) -> Parsed {
    if let Some(i) = python_int(val) {
        return Parsed::Int(i);
    }
    if let Some(f) = python_float(val) {
        return Parsed::Float(f);
    }
    match val.to_ascii_lowercase().as_str() {
        "true" => return Parsed::Bool(true),
        "false" => return Parsed::Bool(false),
        _ => {}
    }
    if val == "None" {
        return Parsed::None;
    }
    Parsed::Str(val.to_string())
}

/// Python `int(text)` for base-10 literals that fit an `i64` (bigger ones
/// fall through to `float`, as TOML cannot hold them).
fn python_int(text: &str) -> Option<i64> {
    let text = without_underscores(text.trim())?;
    let digits = text.strip_prefix(['+', '-']).unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Python `float(text)`: decimal, exponent, `inf`, `infinity`, `nan`.
fn python_float(text: &str) -> Option<f64> {
    let text = without_underscores(text.trim())?;
    let body = text.strip_prefix(['+', '-']).unwrap_or(&text);
    let special = ["inf", "infinity", "nan"].contains(&body.to_ascii_lowercase().as_str());
    // Rust also accepts forms Python rejects (none known), and rejects none
    // that Python accepts apart from underscores, handled above.
    if !special
        && !body
            .bytes()
            .all(|b| b.is_ascii_digit() || b"eE.+-".contains(&b))
    {
        return None;
    }
    text.parse().ok()
}

/// Python allows single underscores between digits (`1_000`); returns the
/// text without them, or `None` if an underscore is misplaced.
fn without_underscores(text: &str) -> Option<String> {
    if !text.contains('_') {
        return Some(text.to_string());
    }
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let before = i.checked_sub(1).and_then(|j| bytes.get(j));
            let after = bytes.get(i + 1);
            if !matches!((before, after), (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit())
            {
                return None;
            }
        }
    }
    Some(text.replace('_', ""))
}

/// Applies parsed options, in order, to `root` (mmcv merges the options with
/// `allow_list_keys=True`). Origins of the keys set are recorded as
/// [`OPTIONS_SOURCE`] (file `source`).
pub(crate) fn apply(
    root: &mut Value,
    provenance: &mut Provenance,
    files: &Files,
    source: FileId,
    options: &[ConfigOption],
) -> Result<(), ConfigError> {
    for option in options {
        apply_one(root, provenance, files, source, option)?;
    }
    Ok(())
}

fn apply_one(
    root: &mut Value,
    provenance: &mut Provenance,
    files: &Files,
    source: FileId,
    option: &ConfigOption,
) -> Result<(), ConfigError> {
    let cannot_reach = |provenance: &Provenance, reached: &[String], failed: &[String]| {
        let file = provenance.resolve(reached).unwrap_or(0);
        ConfigError::UnknownOverridePath {
            option: option.text.clone(),
            key: dotted(failed),
            file: files
                .path(file, std::path::Path::new(OPTIONS_SOURCE))
                .to_path_buf(),
        }
    };
    let Some((last, parents)) = option.path.split_last() else {
        return Ok(());
    };
    let mut current = root;
    for (depth, segment) in parents.iter().enumerate() {
        let here = &option.path[..depth];
        let next = &option.path[..=depth];
        current = match current {
            Value::Table(table) => {
                if !table.contains_key(segment) {
                    if option.value.is_none() {
                        // Nothing to remove.
                        return Ok(());
                    }
                    table.insert(segment.clone(), Value::Table(toml::Table::new()));
                    provenance.set_subtree(next, source);
                }
                match table.get_mut(segment) {
                    Some(value) => value,
                    None => return Err(cannot_reach(provenance, here, next)),
                }
            }
            Value::Array(items) => match parse_index(segment).and_then(|i| items.get_mut(i)) {
                Some(value) => value,
                None => return Err(cannot_reach(provenance, here, next)),
            },
            _ => return Err(cannot_reach(provenance, here, next)),
        };
    }
    let full = option.path.as_slice();
    match (current, &option.value) {
        (Value::Table(table), Some(value)) => {
            table.insert(last.clone(), value.clone());
            provenance.set_subtree(full, source);
        }
        (Value::Table(table), None) => {
            table.remove(last);
            provenance.remove_subtree(full);
        }
        (Value::Array(items), Some(value)) => {
            match parse_index(last).and_then(|i| items.get_mut(i)) {
                Some(slot) => {
                    *slot = value.clone();
                    provenance.set_subtree(full, source);
                }
                None => return Err(cannot_reach(provenance, parents, full)),
            }
        }
        (Value::Array(_), None) => {
            return Err(ConfigError::BadOption {
                option: option.text.clone(),
                message: "`None` cannot replace a list element (TOML has no null)".to_string(),
            });
        }
        _ => return Err(cannot_reach(provenance, parents, full)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Parsed::*;

    fn p(raw: &str) -> Parsed {
        parse_value(raw).unwrap()
    }

    #[test]
    fn scalars_follow_python() {
        assert_eq!(p("3"), Int(3));
        assert_eq!(p("-3"), Int(-3));
        assert_eq!(p("+3"), Int(3));
        assert_eq!(p("1_000"), Int(1000));
        assert_eq!(p("0.5"), Float(0.5));
        assert_eq!(p("1e-4"), Float(1e-4));
        assert_eq!(p("-.5"), Float(-0.5));
        assert_eq!(p("5."), Float(5.0));
        assert_eq!(p("99999999999999999999"), Float(1e20));
        assert!(matches!(p("inf"), Float(f) if f.is_infinite()));
        assert_eq!(p("True"), Bool(true));
        assert_eq!(p("FALSE"), Bool(false));
        assert_eq!(p("None"), None);
        assert_eq!(p("none"), Str("none".into()));
        assert_eq!(p("1_"), Str("1_".into()));
        assert_eq!(p("e5"), Str("e5".into()));
        assert_eq!(p("'x y'"), Str("xy".into()));
        assert_eq!(p(""), Str(String::new()));
    }

    #[test]
    fn iterables_follow_mmcv() {
        assert_eq!(p("[1,2]"), List(vec![Int(1), Int(2)]));
        assert_eq!(p("(1, 'a')"), List(vec![Int(1), Str("a".into())]));
        assert_eq!(p("[]"), List(vec![]));
        assert_eq!(p("1,2,"), List(vec![Int(1), Int(2)]));
        assert_eq!(
            p("[(1,2),(3,[4])]"),
            List(vec![
                List(vec![Int(1), Int(2)]),
                List(vec![Int(3), List(vec![Int(4)])])
            ])
        );
        assert_eq!(p("[1,2],3"), List(vec![List(vec![Int(1), Int(2)]), Int(3)]));
        assert!(parse_value("[1,2").is_err());
        assert!(parse_value("[1,2],[3").is_err());
        assert!(parse_value(&format!("{}{}", "[".repeat(200), "]".repeat(200))).is_err());
    }

    #[test]
    fn malformed_items_are_errors() {
        assert!(parse_option("a.b").is_err());
        assert!(parse_option("=1").is_err());
        assert!(parse_option("a..b=1").is_err());
        assert!(parse_option("a=[None]").is_err());
        assert_eq!(parse_option("a=None").unwrap().value, Option::None);
    }
}
