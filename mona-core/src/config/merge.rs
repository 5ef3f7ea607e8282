//! mmcv's recursive merge (`Config._merge_a_into_b`), one file onto the
//! merged result of its bases.
//!
//! Tables merge key by key; everything else, arrays included, replaces the
//! base value wholesale. `_delete_ = true` in a child table discards the base
//! value at that key. A child table over a base non-table is an error (mmcv
//! raises `TypeError`), a child scalar over a base table just replaces it.

use std::path::Path;

use toml::{Table, Value};

use super::error::ConfigError;
use super::keys::{dotted, type_name};
use super::provenance::{FileId, Provenance};

/// The key that makes a child table replace instead of merge.
pub(crate) const DELETE_KEY: &str = "_delete_";

/// A merged table and the origin of its keys.
#[derive(Clone, Debug, Default)]
pub(crate) struct Layer {
    pub(crate) table: Table,
    pub(crate) provenance: Provenance,
}

/// Merges the table parsed from `file` (whose path is `file_path`) on top of
/// `layer`.
pub(crate) fn merge_file(
    layer: &mut Layer,
    child: Table,
    file: FileId,
    file_path: &Path,
) -> Result<(), ConfigError> {
    let origin = Origin {
        file,
        path: file_path,
    };
    merge_tables(
        &mut layer.table,
        &mut layer.provenance,
        child,
        origin,
        &mut Vec::new(),
    )
}

/// The file whose values are being merged.
#[derive(Clone, Copy)]
struct Origin<'a> {
    file: FileId,
    path: &'a Path,
}

fn merge_tables(
    base: &mut Table,
    provenance: &mut Provenance,
    child: Table,
    origin: Origin<'_>,
    path: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (key, value) in child {
        path.push(key.clone());
        match value {
            Value::Table(mut table) => {
                let delete = take_delete_flag(&mut table, origin.path, path)?;
                match base.get_mut(&key) {
                    Some(Value::Table(base_table)) if !delete => {
                        merge_tables(base_table, provenance, table, origin, path)?;
                    }
                    Some(_) if !delete => {
                        return Err(ConfigError::DictOverNonDict {
                            key: dotted(path),
                            file: origin.path.to_path_buf(),
                        });
                    }
                    _ => {
                        base.insert(key, Value::Table(table));
                        provenance.set_subtree(path, origin.file);
                    }
                }
            }
            other => {
                base.insert(key, other);
                provenance.set_subtree(path, origin.file);
            }
        }
        path.pop();
    }
    Ok(())
}

/// Removes `_delete_` from a child table and returns its value.
fn take_delete_flag(table: &mut Table, file: &Path, path: &[String]) -> Result<bool, ConfigError> {
    match table.remove(DELETE_KEY) {
        None => Ok(false),
        Some(Value::Boolean(flag)) => Ok(flag),
        Some(other) => Err(ConfigError::Invalid {
            file: file.to_path_buf(),
            key: format!("{}.{DELETE_KEY}", dotted(path)),
            message: format!(
                "`{DELETE_KEY}` must be true or false, found {}",
                type_name(&other)
            ),
        }),
    }
}

/// Drops every `_delete_` key left in a merged table (ones that had no base
/// value to act on). They have done their job, and typed structs that deny
/// unknown fields would trip over them.
pub(crate) fn strip_delete_keys(table: &mut Table) {
    table.remove(DELETE_KEY);
    for (_, value) in table.iter_mut() {
        strip_value(value);
    }
}

fn strip_value(value: &mut Value) {
    match value {
        Value::Table(table) => strip_delete_keys(table),
        Value::Array(items) => items.iter_mut().for_each(strip_value),
        _ => {}
    }
}
