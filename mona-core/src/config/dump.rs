//! Writing the merged config as TOML (it is saved to the work directory so a
//! run can be reproduced from one file).
//!
//! Layout: keys in the order they were first declared (bases first, as
//! merged); within a table, plain values (scalars, arrays, inline tables
//! inside arrays) before sub-tables; sub-tables as `[a.b]` sections; a
//! non-empty array whose elements are all tables as `[[a.b]]` sections (a
//! pipeline reads as a list of steps). Arrays whose one-line form is long
//! are written one element per line. The output parses back to an equal
//! table.

use std::fmt::Write;

use toml::{Table, Value};

/// One-line arrays longer than this are split over several lines.
const MAX_INLINE_WIDTH: usize = 100;

/// Renders `table` as a TOML document.
pub(crate) fn to_toml_string(table: &Table) -> String {
    let mut out = String::new();
    write_body(&mut out, table, &mut Vec::new());
    out
}

/// Whether `value` is written as a section rather than `key = value`.
enum Section<'a> {
    Table(&'a Table),
    ArrayOfTables(Vec<&'a Table>),
}

fn section(value: &Value) -> Option<Section<'_>> {
    match value {
        Value::Table(table) => Some(Section::Table(table)),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(Value::as_table)
            .collect::<Option<Vec<_>>>()
            .map(Section::ArrayOfTables),
        _ => None,
    }
}

/// Writes the plain entries of `table`, then its sections. `path` is the
/// table's header path.
fn write_body(out: &mut String, table: &Table, path: &mut Vec<String>) {
    for (key, value) in table {
        if section(value).is_none() {
            let _ = writeln!(out, "{} = {}", key_text(key), value_text(value, true));
        }
    }
    for (key, value) in table {
        path.push(key.clone());
        match section(value) {
            Some(Section::Table(child)) => {
                // A table holding only sections needs no header of its own.
                let only_sections =
                    !child.is_empty() && child.values().all(|v| section(v).is_some());
                if !only_sections {
                    header(out, &format!("[{}]", header_path(path)));
                }
                write_body(out, child, path);
            }
            Some(Section::ArrayOfTables(children)) => {
                for child in children {
                    header(out, &format!("[[{}]]", header_path(path)));
                    write_body(out, child, path);
                }
            }
            None => {}
        }
        path.pop();
    }
}

fn header(out: &mut String, text: &str) {
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str(text);
    out.push('\n');
}

fn header_path(path: &[String]) -> String {
    path.iter()
        .map(|k| key_text(k))
        .collect::<Vec<_>>()
        .join(".")
}

/// A key, bare when TOML allows it, else quoted.
fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else {
        string_text(key)
    }
}

/// A basic (double-quoted) TOML string.
fn string_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A float that parses back to the same bits (up to NaN payloads).
fn float_text(f: f64) -> String {
    if f.is_nan() {
        if f.is_sign_negative() { "-nan" } else { "nan" }.to_string()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        // Debug is the shortest round-tripping form and always has a `.` or
        // an exponent (`1.0`, `0.0001`, `1e-7`), all valid TOML floats.
        format!("{f:?}")
    }
}

/// `value` in inline form. `top` arrays may be split over lines.
fn value_text(value: &Value, top: bool) -> String {
    match value {
        Value::String(s) => string_text(s),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => float_text(*f),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(|v| value_text(v, false)).collect();
            let one_line = format!("[{}]", parts.join(", "));
            if top && parts.len() > 1 && one_line.len() > MAX_INLINE_WIDTH {
                let mut out = String::from("[\n");
                for part in parts {
                    let _ = writeln!(out, "    {part},");
                }
                out.push(']');
                out
            } else {
                one_line
            }
        }
        Value::Table(table) if table.is_empty() => "{}".to_string(),
        Value::Table(table) => {
            let parts: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{} = {}", key_text(k), value_text(v, false)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        let table: Table = toml::from_str(text).unwrap();
        let dumped = to_toml_string(&table);
        let back: Table = toml::from_str(&dumped).unwrap_or_else(|e| panic!("{e}\n{dumped}"));
        assert_eq!(back, table, "{dumped}");
        dumped
    }

    #[test]
    fn sections_after_plain_values() {
        let dumped = round_trip(
            r#"
            [model]
            type = "X"
            [model.backbone]
            depths = [2, 2]
            [top]
            "a.b" = 1
            x = 1e-4
            "#,
        );
        assert_eq!(
            dumped,
            "[model]\ntype = \"X\"\n\n[model.backbone]\ndepths = [2, 2]\n\n[top]\n\"a.b\" = 1\nx = 0.0001\n"
        );
    }

    #[test]
    fn arrays_of_tables_and_odd_values() {
        round_trip(
            r#"
            empty = {}
            nested = [[{ a = 1 }], []]
            mixed = [1, { a = 2 }]
            s = "quote \" back \\ tab \t bell \u0007"
            big = 1e300
            neg = -0.0
            inf = -inf
            day = 1979-05-27T07:32:00Z
            long = ["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccc", "dddddddddddddddddddddd", "eeeee"]
            [[steps]]
            type = "A"
            [steps.sub]
            k = 1
            [[steps.inner]]
            z = 1
            [[steps]]
            type = "B"
            [only]
            [only.sub]
            v = 1
            [emptytable]
            "#,
        );
    }
}
