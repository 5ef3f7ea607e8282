//! Reading config files and resolving `_base_` (mmcv `Config._file2dict`).
//!
//! A file's bases are loaded recursively and merged into one table (sibling
//! bases may not share a top-level key); the file itself is then merged on
//! top. Base paths are relative to the folder of the file that lists them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::ConfigError;
use super::keys::type_name;
use super::merge::{Layer, merge_file, strip_delete_keys};
use super::paths::{identity, normalize};
use super::provenance::Files;

/// The key listing a file's bases.
pub(crate) const BASE_KEY: &str = "_base_";

/// A fully resolved config: merged table, origins, and the files involved.
pub(crate) struct Loaded {
    pub(crate) layer: Layer,
    pub(crate) files: Files,
}

/// Loads the config at `path`, reading it from disk unless `text` is given.
pub(crate) fn load(path: &Path, text: Option<&str>) -> Result<Loaded, ConfigError> {
    let mut loader = Loader::default();
    let path = normalize(path);
    let layer = loader.load(&path, text, None)?;
    Ok(Loaded {
        layer,
        files: loader.files,
    })
}

#[derive(Default)]
struct Loader {
    files: Files,
    /// Files being loaded, outermost first: (identity, spelling).
    stack: Vec<(PathBuf, PathBuf)>,
}

impl Loader {
    /// Loads one file. `declared_in` is the file whose `_base_` lists it
    /// (`None` for the top file), used to report a missing base.
    fn load(
        &mut self,
        path: &Path,
        text: Option<&str>,
        declared_in: Option<&Path>,
    ) -> Result<Layer, ConfigError> {
        let id = identity(path);
        if let Some(start) = self.stack.iter().position(|(seen, _)| *seen == id) {
            let mut chain: Vec<PathBuf> =
                self.stack[start..].iter().map(|(_, p)| p.clone()).collect();
            chain.push(path.to_path_buf());
            return Err(ConfigError::BaseCycle { chain });
        }
        let owned;
        let text = match text {
            Some(text) => text,
            None => {
                owned = read(path, declared_in)?;
                owned.as_str()
            }
        };
        self.stack.push((id, path.to_path_buf()));
        let result = self.load_text(path, text);
        self.stack.pop();
        result
    }

    fn load_text(&mut self, path: &Path, text: &str) -> Result<Layer, ConfigError> {
        let file = self.files.intern(path);
        let mut table = parse(path, text)?;
        let bases = take_bases(&mut table, path)?;
        let mut layer = self.merged_bases(path, &bases)?;
        merge_file(&mut layer, table, file, path)?;
        strip_delete_keys(&mut layer.table);
        Ok(layer)
    }

    /// Loads the bases of `path` and puts them side by side in one layer.
    fn merged_bases(&mut self, path: &Path, bases: &[String]) -> Result<Layer, ConfigError> {
        let folder = path.parent().unwrap_or(Path::new(""));
        let mut merged = Layer::default();
        let mut owners: HashMap<String, PathBuf> = HashMap::new();
        for base in bases {
            let base_path = normalize(&folder.join(base));
            let layer = self.load(&base_path, None, Some(path))?;
            for (key, value) in layer.table {
                if let Some(first) = owners.get(&key) {
                    return Err(ConfigError::DuplicateBaseKey {
                        key,
                        first: first.clone(),
                        second: base_path,
                    });
                }
                owners.insert(key.clone(), base_path.clone());
                merged.table.insert(key, value);
            }
            merged.provenance.absorb(layer.provenance);
        }
        Ok(merged)
    }
}

fn read(path: &Path, declared_in: Option<&Path>) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| match declared_in {
        Some(declared_in) if source.kind() == std::io::ErrorKind::NotFound => {
            ConfigError::MissingBase {
                declared_in: declared_in.to_path_buf(),
                base: path.to_path_buf(),
            }
        }
        _ => ConfigError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// Parses TOML text, turning the error span into a 1-based line and column.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Table, ConfigError> {
    toml::from_str::<Table>(text).map_err(|error| {
        let (line, column) = match error.span() {
            Some(span) => {
                let (line, column) = line_column(text, span.start);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            // toml splits some messages over lines; keep errors one line.
            message: error
                .message()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .collect::<Vec<_>>()
                .join("; "),
        }
    })
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Removes `_base_` from a parsed file and returns the listed paths.
fn take_bases(table: &mut Table, path: &Path) -> Result<Vec<String>, ConfigError> {
    let bad = |message: String| ConfigError::BadBaseValue {
        path: path.to_path_buf(),
        message,
    };
    match table.remove(BASE_KEY) {
        None => Ok(Vec::new()),
        Some(Value::String(base)) => Ok(vec![base]),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Value::String(base) => Ok(base),
                other => Err(bad(format!(
                    "element {index} is {}, expected a path string",
                    type_name(&other)
                ))),
            })
            .collect(),
        Some(other) => Err(bad(format!(
            "expected a path string or an array of path strings, found {}",
            type_name(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        assert_eq!(line_column("a = 1\nb = ?\n", 10), (2, 5));
        assert_eq!(line_column("", 3), (1, 1));
    }
}
