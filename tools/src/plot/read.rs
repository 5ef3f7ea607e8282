//! Reading `log.jsonl`: records with their numeric fields, resumed runs deduplicated.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::PlotError;

/// One line of `log.jsonl`: its `mode` and its numeric fields (`iter` and `epoch` included).
///
/// Non-numeric fields other than `mode` are dropped: only numbers can be plotted, and the
/// runner writes a diverged loss (NaN) as `null`, which must not stop the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub mode: Option<String>,
    pub values: BTreeMap<String, f64>,
}

/// The records of one log file's text, in file order, deduplicated for resumed runs.
///
/// A resumed run appends to the same file and repeats the iterations after its checkpoint,
/// so a record with the same `mode` and `iter` as an earlier one replaces it: the later
/// record is the one the final model descends from. Blank lines are skipped; any other line
/// that is not a JSON object is an error naming `path:line`, because a silently skipped line
/// would hide a corrupted log.
pub fn parse_log(path: &str, text: &str) -> Result<Vec<Record>, PlotError> {
    let mut records: Vec<Record> = Vec::new();
    let mut seen: HashMap<(Option<String>, u64), usize> = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            let message = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            PlotError::Malformed {
                path: path.to_owned(),
                line: line_no,
                column: e.column(),
                message: message
                    .strip_suffix(&position)
                    .unwrap_or(&message)
                    .to_owned(),
            }
        })?;
        let Value::Object(map) = value else {
            return Err(PlotError::NotObject {
                path: path.to_owned(),
                line: line_no,
                found: json_kind(&value),
            });
        };
        let mode = map.get("mode").and_then(Value::as_str).map(str::to_owned);
        let values = map
            .iter()
            .filter_map(|(k, v)| v.as_f64().filter(|x| x.is_finite()).map(|x| (k.clone(), x)))
            .collect();
        let record = Record { mode, values };
        match record.values.get("iter") {
            Some(iter) => {
                let slot = (record.mode.clone(), iter.to_bits());
                match seen.get(&slot) {
                    Some(&at) => records[at] = record,
                    None => {
                        seen.insert(slot, records.len());
                        records.push(record);
                    }
                }
            }
            None => records.push(record),
        }
    }
    Ok(records)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Reads and parses one log file; an empty log is an error since it would plot nothing.
pub fn read_log(path: &Path) -> Result<Vec<Record>, PlotError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| PlotError::Read {
        path: shown.clone(),
        source,
    })?;
    let records = parse_log(&shown, &text)?;
    if records.is_empty() {
        return Err(PlotError::Empty { path: shown });
    }
    Ok(records)
}

/// Short legend names for log files: the file stems when they differ, else the parent
/// directories (every run writes `log.jsonl`, so `work_dirs/a/log.jsonl` becomes `a`), else
/// the paths as given.
pub fn log_names(paths: &[PathBuf]) -> Vec<String> {
    fn unique(names: &[String]) -> bool {
        names.iter().collect::<BTreeSet<_>>().len() == names.len()
    }
    let stems: Vec<String> = paths
        .iter()
        .map(|p| match p.file_stem() {
            Some(stem) => stem.to_string_lossy().into_owned(),
            None => p.display().to_string(),
        })
        .collect();
    if unique(&stems) {
        return stems;
    }
    let parents: Vec<String> = paths
        .iter()
        .map(|p| match p.parent().and_then(Path::file_name) {
            Some(dir) => dir.to_string_lossy().into_owned(),
            None => p.display().to_string(),
        })
        .collect();
    if unique(&parents) {
        return parents;
    }
    paths.iter().map(|p| p.display().to_string()).collect()
}

/// The numeric keys of the records, without the x fields, for the unknown-key message.
pub(super) fn available_keys<'a>(logs: impl IntoIterator<Item = &'a [Record]>) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for records in logs {
        for record in records {
            keys.extend(
                record
                    .values
                    .keys()
                    .filter(|k| *k != "iter" && *k != "epoch")
                    .cloned(),
            );
        }
    }
    keys.into_iter().collect()
}
