//! One subplot per key, one series per log and mode.

use std::collections::{BTreeMap, BTreeSet};

use image::Rgb;

use super::read::{Record, available_keys};
use super::{PALETTE, PlotError, XAxis};

/// One polyline: a (log, key, mode) triple's points sorted by x.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub color: Rgb<u8>,
    pub points: Vec<(f64, f64)>,
}

/// One axes: a key and its series, with a legend when the series need telling apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Subplot {
    pub key: String,
    pub series: Vec<Series>,
    pub legend: bool,
}

/// The points of `key` in `records` by mode, sorted by x; points sharing an x (train
/// records of one epoch with `--x epoch`) are averaged, as an epoch summary would be.
pub(super) fn points_by_mode(
    records: &[Record],
    key: &str,
    x: XAxis,
) -> BTreeMap<Option<String>, Vec<(f64, f64)>> {
    let mut raw: BTreeMap<Option<String>, Vec<(f64, f64)>> = BTreeMap::new();
    for record in records {
        if let (Some(&px), Some(&py)) = (record.values.get(x.field()), record.values.get(key)) {
            raw.entry(record.mode.clone()).or_default().push((px, py));
        }
    }
    for points in raw.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(points.len());
        let mut i = 0;
        while i < points.len() {
            let x0 = points[i].0;
            let run = points[i..].iter().take_while(|p| p.0 == x0).count();
            let mean = points[i..i + run].iter().map(|p| p.1).sum::<f64>() / run as f64;
            merged.push((x0, mean));
            i += run;
        }
        *points = merged;
    }
    raw
}

/// One subplot per key (in order, duplicates dropped), each with one series per log and per
/// mode that logs the key: losses come from train records and metrics from val records
/// without the caller saying which. Colours run through [`PALETTE`] in drawing order, so
/// every series of the figure has its own.
///
/// A key logged by no log is an error listing the keys that exist; a key missing from some
/// logs only is drawn from the others (comparing a run that lacks a metric is still useful).
pub fn build_subplots(
    logs: &[Vec<Record>],
    names: &[String],
    keys: &[String],
    x: XAxis,
) -> Result<Vec<Subplot>, PlotError> {
    let mut subplots = Vec::new();
    let mut color = 0;
    let mut done = BTreeSet::new();
    for key in keys {
        if !done.insert(key.as_str()) {
            continue;
        }
        let per_log: Vec<_> = logs.iter().map(|r| points_by_mode(r, key, x)).collect();
        let present = logs
            .iter()
            .any(|records| records.iter().any(|r| r.values.contains_key(key)));
        if !present {
            return Err(PlotError::UnknownKey {
                key: key.clone(),
                available: available_keys(logs.iter().map(Vec::as_slice)),
            });
        }
        let modes: BTreeSet<&Option<String>> = per_log.iter().flat_map(|m| m.keys()).collect();
        let mut series = Vec::new();
        for (log, by_mode) in per_log.iter().enumerate() {
            if by_mode.is_empty() {
                let has_key = logs[log].iter().any(|r| r.values.contains_key(key));
                let missing = if has_key {
                    format!("`{key}` together with `{}`", x.field())
                } else {
                    format!("`{key}`")
                };
                tracing::warn!("{}: no record has {missing}", names[log]);
            }
            for (mode, points) in by_mode {
                let mode_name = mode.as_deref().unwrap_or("no mode");
                let label = match (logs.len() > 1, modes.len() > 1) {
                    (true, true) => format!("{} ({mode_name})", names[log]),
                    (true, false) => names[log].clone(),
                    (false, _) => mode_name.to_owned(),
                };
                series.push(Series {
                    label,
                    color: PALETTE[color % PALETTE.len()],
                    points: points.clone(),
                });
                color += 1;
            }
        }
        if series.is_empty() {
            return Err(PlotError::NoPoints {
                key: key.clone(),
                x: x.field(),
            });
        }
        subplots.push(Subplot {
            key: key.clone(),
            legend: logs.len() > 1 || series.len() > 1,
            series,
        });
    }
    if subplots.is_empty() {
        return Err(PlotError::NoKeys);
    }
    Ok(subplots)
}
