//! Training curves from the runner's `log.jsonl` files as a PNG: mmdet's
//! `analyze_logs.py plot_curve` without Python or matplotlib.
//!
//! Everything is drawn here because the tools must run on bare training machines: no system
//! fonts, no network, no plotting library. The `image` crate only encodes the PNG; lines
//! (Xiaolin Wu's algorithm widened to a thickness), discs, rectangles and text (a 5x7 bitmap
//! font with a descender row) are rasterised by this module.
//!
//! The pieces, usable on their own: [`parse_log`] (records, with resumed runs deduplicated),
//! [`build_subplots`] (one subplot per key, one series per log and mode), [`render`] (the
//! image), [`nice_ticks`] and [`format_ticks`] (the axes), and [`plot_logs`], which is the
//! `plot-log` binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use serde_json::Value;

/// The series colours, in drawing order: matplotlib's `tab10`, so that the curves look like
/// the ones mmdet's script draws. Series past the tenth reuse them.
pub const PALETTE: [Rgb<u8>; 10] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
    Rgb([188, 189, 34]),
    Rgb([23, 190, 207]),
];

/// The image background. Public so that tests can tell drawn pixels from empty ones.
pub const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([34, 34, 34]);
const FRAME: Rgb<u8> = Rgb([64, 64, 64]);
const GRID: Rgb<u8> = Rgb([230, 230, 230]);
const LEGEND_BORDER: Rgb<u8> = Rgb([190, 190, 190]);

/// Smallest and largest accepted image side: below the minimum no layout fits even at the
/// smallest text, above the maximum the buffer would be hundreds of megabytes.
pub const MIN_SIZE: (u32, u32) = (160, 120);
/// See [`MIN_SIZE`].
pub const MAX_SIDE: u32 = 8192;

/// What the x axis of every subplot counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XAxis {
    /// The global iteration (`iter`), the runner's own clock.
    Iter,
    /// The epoch (`epoch`); train records of one epoch are averaged into one point.
    Epoch,
}

impl XAxis {
    /// The record field that gives x, which is also the axis label.
    pub fn field(self) -> &'static str {
        match self {
            XAxis::Iter => "iter",
            XAxis::Epoch => "epoch",
        }
    }
}

/// What can go wrong while plotting. Every message is one line naming the file (and line) or
/// the option at fault, so that the user can fix it without reading the code.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: malformed JSON at column {column}: {message}")]
    Malformed {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}:{line}: expected a JSON object (one record per line), found {found}")]
    NotObject {
        path: String,
        line: usize,
        found: &'static str,
    },
    #[error("{path}: no records (the file is empty)")]
    Empty { path: String },
    #[error(
        "no record has a numeric `{key}`; keys in the logs: {}",
        list(available)
    )]
    UnknownKey { key: String, available: Vec<String> },
    #[error("no record has both `{key}` and `{x}`: nothing to plot against --x {x}")]
    NoPoints { key: String, x: &'static str },
    #[error("--keys names no key: give at least one, e.g. --keys loss")]
    NoKeys,
    #[error("--legend has {given} name(s) for {logs} log(s): give one name per log")]
    Legend { given: usize, logs: usize },
    #[error(
        "--width {width} --height {height}: the image must be at least {}x{} and at most {MAX_SIDE} on each side",
        MIN_SIZE.0, MIN_SIZE.1
    )]
    Size { width: u32, height: u32 },
    #[error(
        "--width {width} --height {height} is too small for {subplots} subplot(s): make the image larger or plot fewer keys"
    )]
    TooSmall {
        width: u32,
        height: u32,
        subplots: usize,
    },
    #[error("{path}: cannot write the PNG: {source}")]
    Write {
        path: String,
        source: image::ImageError,
    },
    #[error("--out {path} is one of the logs to plot: refusing to write over an input")]
    OutIsInput { path: String },
    #[error("--out {path}: the plot is a PNG; give the file a .png extension")]
    Extension { path: String },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

// ------------------------------------------------------------------------------------------
// Reading logs
// ------------------------------------------------------------------------------------------

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
fn available_keys<'a>(logs: impl IntoIterator<Item = &'a [Record]>) -> Vec<String> {
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

// ------------------------------------------------------------------------------------------
// Series and subplots
// ------------------------------------------------------------------------------------------

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
fn points_by_mode(
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

// ------------------------------------------------------------------------------------------
// Ticks
// ------------------------------------------------------------------------------------------

/// The ticks of one axis. The axis runs from the first value to the last, so that both ends
/// are labelled (Heckbert's "loose" labelling).
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub values: Vec<f64>,
    pub step: f64,
}

impl Ticks {
    pub fn lo(&self) -> f64 {
        self.values.first().copied().unwrap_or(0.0)
    }
    pub fn hi(&self) -> f64 {
        self.values.last().copied().unwrap_or(1.0)
    }
}

/// 1, 2 or 5 times a power of ten, the nearest to `raw`: steps people read without effort.
fn nice_step(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let base = 10f64.powi(exp as i32);
    let fraction = raw / base;
    let nice = if fraction < 1.5 {
        1.0
    } else if fraction < 3.0 {
        2.0
    } else if fraction < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * base
}

/// About `target` evenly spaced round ticks covering `[lo, hi]`.
///
/// An empty range (a constant loss, a single val point) is widened by 10% of its magnitude
/// (or by 1 around zero) so that the point sits mid-axis. Non-finite bounds, which only come
/// from a caller's mistake, give the ticks of `[0, 1]` rather than a panic.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Ticks {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
        (lo.min(hi), lo.max(hi))
    } else {
        (0.0, 1.0)
    };
    let magnitude = lo.abs().max(hi.abs());
    if hi - lo <= magnitude * 1e-9 {
        let pad = if magnitude == 0.0 {
            1.0
        } else {
            magnitude * 0.1
        };
        lo -= pad;
        hi += pad;
    }
    let intervals = target.max(2) - 1;
    let step = nice_step((hi - lo) / intervals as f64);
    let fallback = Ticks {
        values: vec![lo, hi],
        step: hi - lo,
    };
    if !step.is_finite() || step <= 0.0 {
        return fallback;
    }
    // The epsilon keeps a bound that is a multiple of the step (0.6 / 0.2 = 2.9999…) from
    // gaining an extra tick beyond it.
    let first = (lo / step + 1e-9).floor();
    let last = (hi / step - 1e-9).ceil();
    let count = last - first;
    if !(count.is_finite() && (1.0..=1000.0).contains(&count)) {
        return fallback;
    }
    let values = (0..=count as usize)
        .map(|k| {
            let v = (first + k as f64) * step;
            if v == 0.0 { 0.0 } else { v }
        })
        .collect();
    Ticks { values, step }
}

/// Compact tick labels, one form for the whole axis (mixed forms read as different scales):
/// plain decimals with as many places as the step needs (`0.5`, `120`, `160000`), or
/// exponent form (`1e-3`, `2.5e6`) when the largest tick is below 0.01 or from 1e6 up, where
/// plain labels are mostly zeros: learning rates, and nothing else a run logs, as in
/// matplotlib's default scientific limits with a lower floor for learning rates.
pub fn format_ticks(values: &[f64], step: f64) -> Vec<String> {
    let step_exp = if step > 0.0 && step.is_finite() {
        (step.log10() + 1e-9).floor() as i32
    } else {
        0
    };
    let largest = values
        .iter()
        .filter(|v| v.is_finite())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let scientific = largest > 0.0 && !(0.01..1e6).contains(&largest);
    values
        .iter()
        .map(|&v| {
            if v == 0.0 {
                "0".to_owned()
            } else if !v.is_finite() {
                v.to_string()
            } else if scientific {
                exponent_label(v, step_exp)
            } else {
                let places = (-step_exp).max(0) as usize;
                let text = trim_zeros(&format!("{v:.places$}"));
                if text == "-0" { "0".to_owned() } else { text }
            }
        })
        .collect()
}

/// `v` as `1.2e-3`, with the mantissa digits down to the step's decade (`step_exp`), so that
/// neighbouring ticks differ; Rust's `{:e}` already writes the compact exponent.
fn exponent_label(v: f64, step_exp: i32) -> String {
    let v_exp = format!("{v:e}")
        .split_once('e')
        .and_then(|(_, e)| e.parse::<i32>().ok())
        .unwrap_or(0);
    let digits = (v_exp - step_exp).max(0) as usize;
    let text = format!("{v:.digits$e}");
    match text.split_once('e') {
        Some((mantissa, e)) => format!("{}e{e}", trim_zeros(mantissa)),
        None => text,
    }
}

/// `1.50` → `1.5`, `2.000` → `2`; integers are left alone.
fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text.to_owned()
    }
}

// ------------------------------------------------------------------------------------------
// Font
// ------------------------------------------------------------------------------------------

// The bitmap font lives in `mona_data::draw`, shared with detection's `--show-dir`.
use mona_data::draw::{ADVANCE, GLYPH_H, GLYPH_W, glyph, text_width};

// ------------------------------------------------------------------------------------------
// Rasterisation
// ------------------------------------------------------------------------------------------

/// An RGB image with a clip rectangle, so that curves stay inside their axes.
struct Canvas {
    img: RgbImage,
    /// `x0, y0, x1, y1`, end-exclusive, always within the image.
    clip: [i64; 4],
}

impl Canvas {
    fn new(width: u32, height: u32) -> Self {
        Self {
            img: RgbImage::from_pixel(width, height, BACKGROUND),
            clip: [0, 0, width as i64, height as i64],
        }
    }

    fn set_clip(&mut self, x0: i64, y0: i64, x1: i64, y1: i64) {
        let (w, h) = (self.img.width() as i64, self.img.height() as i64);
        self.clip = [
            x0.clamp(0, w),
            y0.clamp(0, h),
            x1.clamp(0, w),
            y1.clamp(0, h),
        ];
    }

    fn reset_clip(&mut self) {
        self.clip = [0, 0, self.img.width() as i64, self.img.height() as i64];
    }

    /// Mixes `color` into one pixel with opacity `alpha` (coverage, for antialiasing).
    fn blend(&mut self, x: i64, y: i64, color: Rgb<u8>, alpha: f64) {
        let [x0, y0, x1, y1] = self.clip;
        if alpha <= 0.0 || x < x0 || y < y0 || x >= x1 || y >= y1 {
            return;
        }
        let alpha = alpha.min(1.0);
        let pixel = self.img.get_pixel_mut(x as u32, y as u32);
        for (old, new) in pixel.0.iter_mut().zip(color.0) {
            let mixed = *old as f64 + (new as f64 - *old as f64) * alpha;
            *old = mixed.round().clamp(0.0, 255.0) as u8;
        }
    }

    fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb<u8>) {
        let [cx0, cy0, cx1, cy1] = self.clip;
        for py in y.max(cy0)..(y + h).min(cy1) {
            for px in x.max(cx0)..(x + w).min(cx1) {
                self.img.put_pixel(px as u32, py as u32, color);
            }
        }
    }

    /// A one-pixel rectangle outline whose outer edge is the given box.
    fn stroke_rect(&mut self, x: i64, y: i64, w: i64, h: i64, color: Rgb<u8>) {
        self.fill_rect(x, y, w, 1, color);
        self.fill_rect(x, y + h - 1, w, 1, color);
        self.fill_rect(x, y, 1, h, color);
        self.fill_rect(x + w - 1, y, 1, h, color);
    }

    /// An antialiased line `width` pixels thick: Xiaolin Wu's algorithm with the one-pixel
    /// span along the minor axis widened to the line's thickness. Interior pixels are fully
    /// covered (the exact colour, which tests look for), the two edge pixels of every column
    /// get the fractional coverage. Pixel centres are at integer coordinates.
    fn line(&mut self, from: (f64, f64), to: (f64, f64), width: f64, color: Rgb<u8>) {
        let (mut x0, mut y0, mut x1, mut y1) = (from.0, from.1, to.0, to.1);
        if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
            return;
        }
        let steep = (y1 - y0).abs() > (x1 - x0).abs();
        if steep {
            std::mem::swap(&mut x0, &mut y0);
            std::mem::swap(&mut x1, &mut y1);
        }
        if x0 > x1 {
            std::mem::swap(&mut x0, &mut x1);
            std::mem::swap(&mut y0, &mut y1);
        }
        let dx = x1 - x0;
        let gradient = if dx < 1e-12 { 0.0 } else { (y1 - y0) / dx };
        // The vertical extent of a band `width` thick across its own direction.
        let half = width * (1.0 + gradient * gradient).sqrt() / 2.0;
        // Columns far outside the image cannot show; bounding them keeps a wild coordinate
        // from looping for long.
        let limit = if steep {
            self.img.height()
        } else {
            self.img.width()
        } as f64;
        let start = x0.round().max(-1.0);
        let end = x1.round().min(limit + 1.0);
        let mut column = start;
        while column <= end {
            let centre = y0 + gradient * (column - x0);
            let (top, bottom) = (centre - half, centre + half);
            let mut row = (top + 0.5).floor();
            while row <= (bottom - 0.5).ceil() {
                let coverage = (bottom.min(row + 0.5) - top.max(row - 0.5)).clamp(0.0, 1.0);
                if steep {
                    self.blend(row as i64, column as i64, color, coverage);
                } else {
                    self.blend(column as i64, row as i64, color, coverage);
                }
                row += 1.0;
            }
            column += 1.0;
        }
    }

    /// An antialiased filled disc: coverage falls off over the one pixel around the radius.
    fn disc(&mut self, centre: (f64, f64), radius: f64, color: Rgb<u8>) {
        if !(centre.0.is_finite() && centre.1.is_finite()) {
            return;
        }
        let reach = radius + 1.0;
        let (x0, x1) = ((centre.0 - reach).floor(), (centre.0 + reach).ceil());
        let (y0, y1) = ((centre.1 - reach).floor(), (centre.1 + reach).ceil());
        for py in y0 as i64..=y1 as i64 {
            for px in x0 as i64..=x1 as i64 {
                let d = ((px as f64 - centre.0).powi(2) + (py as f64 - centre.1).powi(2)).sqrt();
                self.blend(px, py, color, radius + 0.5 - d);
            }
        }
    }

    /// `text` with its top-left corner at `(x, y)`, each font pixel a `scale`-sized square.
    fn text(&mut self, x: i64, y: i64, text: &str, scale: i64, color: Rgb<u8>) {
        for (i, c) in text.chars().enumerate() {
            let gx = x + i as i64 * ADVANCE * scale;
            for (row, bits) in glyph(c).iter().enumerate() {
                for col in 0..GLYPH_W {
                    if bits & (0x10 >> col) != 0 {
                        self.fill_rect(
                            gx + col * scale,
                            y + row as i64 * scale,
                            scale,
                            scale,
                            color,
                        );
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Layout and drawing
// ------------------------------------------------------------------------------------------

/// What [`render`] needs besides the subplots.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub width: u32,
    pub height: u32,
    pub title: Option<String>,
    pub x: XAxis,
}

/// The text scale for an image: 1 up to about 640 px wide, 2 at the default 960x540, so
/// that labels keep roughly matplotlib's size relative to the figure.
fn preferred_scale(width: u32, height: u32) -> i64 {
    let side = (width as i64).min(height as i64 * 16 / 9);
    ((side + 240) / 480).clamp(1, 4)
}

/// Pixel sizes derived from the text scale.
#[derive(Debug, Clone, Copy)]
struct Metrics {
    scale: i64,
    text_h: i64,
    pad: i64,
    tick: i64,
    /// Curve thickness: at least 2 px so that every column has fully covered pixels.
    line_w: f64,
    marker_r: f64,
    /// Gap between the frame and the outer ticks, so that markers on the first and last
    /// point are not cut in half and curves do not hide in the frame line.
    inset: f64,
}

impl Metrics {
    fn new(scale: i64) -> Self {
        Self {
            scale,
            text_h: GLYPH_H * scale,
            pad: 4 * scale,
            tick: 2 * scale + 2,
            line_w: if scale == 1 { 2.0 } else { 1.0 + scale as f64 },
            marker_r: 1.5 + 1.25 * scale as f64,
            inset: (2.5 + 1.25 * scale as f64).ceil() + 1.0,
        }
    }
}

/// One axes placed on the image, with its ticks.
struct Axes {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
    inset: f64,
    yticks: Ticks,
    ylabels: Vec<String>,
}

impl Axes {
    /// Pixel column of `x`: the outer x ticks sit `inset` inside the frame.
    fn px(&self, x: f64, ticks: &Ticks) -> f64 {
        let span = (self.w - 1) as f64 - 2.0 * self.inset;
        self.x as f64 + self.inset + (x - ticks.lo()) / (ticks.hi() - ticks.lo()) * span
    }
    /// Pixel row of `y`, upwards.
    fn py(&self, y: f64) -> f64 {
        let t = &self.yticks;
        let span = (self.h - 1) as f64 - 2.0 * self.inset;
        (self.y + self.h - 1) as f64 - self.inset - (y - t.lo()) / (t.hi() - t.lo()) * span
    }
}

struct Layout {
    m: Metrics,
    title_y: i64,
    axes: Vec<Axes>,
    xticks: Ticks,
    xlabels: Vec<String>,
    xlabel_y: i64,
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    })
}

/// The tick set for data in `[lo, hi]` among those with at most `max_count` ticks whose
/// labels `fit`, scored on the share of the axis the data use (loose labelling extends the
/// axis to the outer ticks, so a coarse step can leave half of it empty) minus a penalty for
/// straying from `desired` ticks (too many clutter, too few make values hard to read). Ties
/// go to fewer ticks; when nothing fits, the coarsest set.
fn choose_ticks(
    lo: f64,
    hi: f64,
    desired: usize,
    max_count: usize,
    fits: impl Fn(&Ticks, &[String]) -> bool,
) -> (Ticks, Vec<String>) {
    let desired = desired.max(2) as f64;
    let mut best: Option<(f64, Ticks, Vec<String>)> = None;
    let mut coarsest: Option<(Ticks, Vec<String>)> = None;
    for target in 2..=max_count.max(2) {
        let ticks = nice_ticks(lo, hi, target);
        let labels = format_ticks(&ticks.values, ticks.step);
        if coarsest
            .as_ref()
            .is_none_or(|(c, _)| ticks.values.len() < c.values.len())
        {
            coarsest = Some((ticks.clone(), labels.clone()));
        }
        let count = ticks.values.len();
        if count > max_count || !fits(&ticks, &labels) {
            continue;
        }
        let span = ticks.hi() - ticks.lo();
        let used = if span > 0.0 && hi > lo {
            (hi - lo) / span
        } else {
            1.0
        };
        let score = used - 0.25 * (count as f64 - desired).abs() / desired;
        let better = match &best {
            None => true,
            Some((s, t, _)) => score > *s + 1e-9 || (score > *s - 1e-9 && count < t.values.len()),
        };
        if better {
            best = Some((score, ticks, labels));
        }
    }
    match (best, coarsest) {
        (Some((_, ticks, labels)), _) | (None, Some((ticks, labels))) => (ticks, labels),
        (None, None) => {
            let ticks = nice_ticks(lo, hi, 2);
            let labels = format_ticks(&ticks.values, ticks.step);
            (ticks, labels)
        }
    }
}

/// Places the title, the stacked axes and their labels at text scale `scale`; `None` when
/// the image is too small for it.
fn layout(subplots: &[Subplot], opts: &RenderOptions, scale: i64) -> Option<Layout> {
    let m = Metrics::new(scale);
    let (width, height) = (opts.width as i64, opts.height as i64);
    let n = subplots.len() as i64;
    let title_h = match &opts.title {
        Some(_) => GLYPH_H * (scale + 1) + m.pad,
        None => 0,
    };
    let top = m.pad + title_h;
    let bottom = m.text_h + 2 * m.pad;
    let region = (height - top - bottom) / n.max(1);
    let above = m.text_h + 3 * scale;
    let below = m.tick + 2 * scale + m.text_h + m.pad;
    let plot_h = region - above - below;
    if plot_h < 3 * m.text_h {
        return None;
    }

    // The y ticks first: their labels decide the left margin. Labels need 1.4 text heights
    // each to stay apart; one per 3 text heights reads best.
    let y_gap = 1.4 * m.text_h as f64;
    let y_desired = (plot_h / (3 * m.text_h)).clamp(3, 8) as usize;
    let mut axes: Vec<Axes> = subplots
        .iter()
        .enumerate()
        .map(|(i, sub)| {
            let (lo, hi) = range(sub.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
            let (yticks, ylabels) = choose_ticks(lo, hi, y_desired, 10, |ticks, _| {
                plot_h as f64 / (ticks.values.len().max(2) - 1) as f64 >= y_gap
            });
            Axes {
                x: 0,
                y: top + i as i64 * region + above,
                w: 0,
                h: plot_h,
                inset: m.inset,
                yticks,
                ylabels,
            }
        })
        .collect();
    let label_w = axes
        .iter()
        .flat_map(|a| a.ylabels.iter())
        .map(|l| text_width(l, scale))
        .max()
        .unwrap_or(0);
    let left = m.pad + label_w + 2 * scale + m.tick;

    // Every subplot shares the x range, so that curves line up across keys. Iterations and
    // epochs are whole numbers: their ticks are too (no "iter 1.5"), and a lone point gets
    // its neighbours as the axis ends.
    let xs = || {
        subplots
            .iter()
            .flat_map(|s| s.series.iter())
            .flat_map(|s| s.points.iter().map(|p| p.0))
    };
    let (mut xlo, mut xhi) = range(xs());
    let integral = xs().all(|x| x.fract() == 0.0);
    if integral && xlo == xhi {
        (xlo, xhi) = (xlo - 1.0, xhi + 1.0);
    }
    let char_w = ADVANCE * scale;
    let plot_w = width - left - (m.pad + 3 * char_w);
    let x_desired = (plot_w / (12 * char_w)).clamp(3, 8) as usize;
    let (xticks, xlabels) = choose_ticks(xlo, xhi, x_desired, 12, |ticks, labels| {
        let widest = labels
            .iter()
            .map(|l| text_width(l, scale))
            .max()
            .unwrap_or(0);
        let gaps = (ticks.values.len().max(2) - 1) as i64;
        plot_w / gaps >= widest + 2 * char_w && (!integral || ticks.step >= 1.0 - 1e-9)
    });
    // The last x label is centred on the right edge of the axes: leave room for its half.
    let last_w = xlabels.last().map_or(0, |l| text_width(l, scale));
    let right = m.pad + (last_w / 2).max(char_w);
    let plot_w = width - left - right;
    if plot_w < 6 * char_w {
        return None;
    }
    for a in &mut axes {
        a.x = left;
        a.w = plot_w;
    }
    Some(Layout {
        m,
        title_y: m.pad,
        xlabel_y: top + n * region,
        axes,
        xticks,
        xlabels,
    })
}

/// Draws the subplots stacked vertically on a `width` x `height` image.
///
/// The text scale drops (down to 1) when the preferred one leaves no room for the axes, so
/// that many keys on a small image still plot; below that it is [`PlotError::TooSmall`].
pub fn render(subplots: &[Subplot], opts: &RenderOptions) -> Result<RgbImage, PlotError> {
    let too_small = || PlotError::TooSmall {
        width: opts.width,
        height: opts.height,
        subplots: subplots.len(),
    };
    if subplots.is_empty() {
        return Err(PlotError::NoKeys);
    }
    let layout = (1..=preferred_scale(opts.width, opts.height))
        .rev()
        .find_map(|scale| layout(subplots, opts, scale))
        .ok_or_else(too_small)?;
    let m = layout.m;
    let s = m.scale;
    let mut canvas = Canvas::new(opts.width, opts.height);

    if let Some(title) = &opts.title {
        let w = text_width(title, s + 1);
        canvas.text(
            (opts.width as i64 - w) / 2,
            layout.title_y,
            title,
            s + 1,
            INK,
        );
    }

    for (sub, axes) in subplots.iter().zip(&layout.axes) {
        draw_axes(&mut canvas, &layout, axes, &sub.key);
        let plot_w = axes.w;
        let (line_w, marker_r) = (m.line_w, m.marker_r);
        canvas.set_clip(axes.x, axes.y, axes.x + axes.w, axes.y + axes.h);
        for series in &sub.series {
            let pts: Vec<(f64, f64)> = series
                .points
                .iter()
                .map(|&(x, y)| (axes.px(x, &layout.xticks), axes.py(y)))
                .collect();
            for pair in pts.windows(2) {
                canvas.line(pair[0], pair[1], line_w, series.color);
            }
            // Round joins: without them thick segments meeting at an angle leave a notch.
            for p in pts.iter().skip(1).take(pts.len().saturating_sub(2)) {
                canvas.disc(*p, line_w / 2.0, series.color);
            }
            if sparse(series, plot_w) {
                for p in &pts {
                    canvas.disc(*p, marker_r, series.color);
                }
            }
        }
        canvas.reset_clip();
        if sub.legend {
            draw_legend(&mut canvas, &layout, axes, sub);
        }
    }

    let label = opts.x.field();
    if let Some(last) = layout.axes.last() {
        let w = text_width(label, s);
        canvas.text(last.x + (last.w - w) / 2, layout.xlabel_y, label, s, INK);
    }
    Ok(canvas.img)
}

/// Markers go on series whose points are at least 24 px apart on average (val metrics, a
/// short run, epoch summaries): there they show where the measurements are; on dense train
/// curves they would only thicken the line.
fn sparse(series: &Series, plot_w: i64) -> bool {
    series.points.len() <= 1 || (series.points.len() as i64) * 24 <= plot_w
}

/// Frame, grid, tick marks, tick labels and the key as the subplot title.
fn draw_axes(canvas: &mut Canvas, layout: &Layout, axes: &Axes, key: &str) {
    let m = layout.m;
    let s = m.scale;
    let (x0, y0, x1, y1) = (axes.x, axes.y, axes.x + axes.w - 1, axes.y + axes.h - 1);

    let title_w = text_width(key, s);
    canvas.text(
        x0 + (axes.w - title_w) / 2,
        y0 - m.text_h - 2 * s,
        key,
        s,
        INK,
    );

    for (value, label) in axes.yticks.values.iter().zip(&axes.ylabels) {
        let py = axes.py(*value).round() as i64;
        canvas.fill_rect(x0 + 1, py, axes.w - 2, 1, GRID);
        canvas.fill_rect(x0 - m.tick, py, m.tick, 1, FRAME);
        let w = text_width(label, s);
        canvas.text(
            x0 - m.tick - 2 * s - w,
            py - (GLYPH_H - 1) * s / 2,
            label,
            s,
            INK,
        );
    }
    for (value, label) in layout.xticks.values.iter().zip(&layout.xlabels) {
        let px = axes.px(*value, &layout.xticks).round() as i64;
        canvas.fill_rect(px, y0 + 1, 1, axes.h - 2, GRID);
        canvas.fill_rect(px, y1 + 1, 1, m.tick, FRAME);
        let w = text_width(label, s);
        canvas.text(px - w / 2, y1 + 1 + m.tick + 2 * s, label, s, INK);
    }
    canvas.stroke_rect(x0, y0, x1 - x0 + 1, y1 - y0 + 1, FRAME);
}

/// The legend box in the corner of the axes that hides the fewest data points (matplotlib's
/// `loc="best"` in spirit), upper right on a tie.
fn draw_legend(canvas: &mut Canvas, layout: &Layout, axes: &Axes, sub: &Subplot) {
    let m = layout.m;
    let s = m.scale;
    let swatch = 4 * ADVANCE * s;
    let row_h = m.text_h + 2 * s;
    let label_w = sub
        .series
        .iter()
        .map(|x| text_width(&x.label, s))
        .max()
        .unwrap_or(0);
    let w = m.pad + swatch + ADVANCE * s + label_w + m.pad;
    let h = m.pad + sub.series.len() as i64 * row_h - 2 * s + m.pad;
    let inset = 2 * s + 1;
    let corners = [
        (axes.x + axes.w - inset - w, axes.y + inset),
        (axes.x + inset, axes.y + inset),
        (axes.x + axes.w - inset - w, axes.y + axes.h - inset - h),
        (axes.x + inset, axes.y + axes.h - inset - h),
    ];
    let hidden = |(lx, ly): (i64, i64)| {
        sub.series
            .iter()
            .flat_map(|x| x.points.iter())
            .filter(|&&(x, y)| {
                let (px, py) = (axes.px(x, &layout.xticks), axes.py(y));
                px >= lx as f64 && px < (lx + w) as f64 && py >= ly as f64 && py < (ly + h) as f64
            })
            .count()
    };
    let (lx, ly) = corners
        .iter()
        .copied()
        .min_by_key(|&c| hidden(c))
        .unwrap_or(corners[0]);
    canvas.fill_rect(lx, ly, w, h, BACKGROUND);
    canvas.stroke_rect(lx, ly, w, h, LEGEND_BORDER);
    for (i, series) in sub.series.iter().enumerate() {
        let ty = ly + m.pad + i as i64 * row_h;
        let cy = (ty + (GLYPH_H - 1) * s / 2) as f64;
        let x0 = (lx + m.pad) as f64;
        canvas.line((x0, cy), (x0 + swatch as f64, cy), m.line_w, series.color);
        if sparse(series, axes.w) {
            canvas.disc((x0 + swatch as f64 / 2.0, cy), m.marker_r, series.color);
        }
        canvas.text(lx + m.pad + swatch + ADVANCE * s, ty, &series.label, s, INK);
    }
}

// ------------------------------------------------------------------------------------------
// The tool
// ------------------------------------------------------------------------------------------

/// Everything `plot-log` takes besides the log paths and the output path.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    pub keys: Vec<String>,
    pub x: XAxis,
    pub title: Option<String>,
    pub width: u32,
    pub height: u32,
    /// One name per log; empty: names from the paths ([`log_names`]).
    pub legend: Vec<String>,
}

/// Reads `logs`, draws `opts.keys` and writes the PNG to `out`, creating its directory. The
/// PNG goes to a temporary file beside `out` first and replaces it only once complete, and
/// `out` must end in `.png` and be none of the logs, so that no input is ever overwritten.
///
/// The options are checked before any log is read so that a typo fails fast on big logs.
pub fn plot_logs(logs: &[PathBuf], opts: &PlotOptions, out: &Path) -> Result<(), PlotError> {
    check_out(logs, out)?;
    let (width, height) = (opts.width, opts.height);
    if width < MIN_SIZE.0 || height < MIN_SIZE.1 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(PlotError::Size { width, height });
    }
    let keys: Vec<String> = opts
        .keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if keys.is_empty() {
        return Err(PlotError::NoKeys);
    }
    if !opts.legend.is_empty() && opts.legend.len() != logs.len() {
        return Err(PlotError::Legend {
            given: opts.legend.len(),
            logs: logs.len(),
        });
    }
    let records = logs
        .iter()
        .map(|p| read_log(p))
        .collect::<Result<Vec<_>, _>>()?;
    let names = if opts.legend.is_empty() {
        log_names(logs)
    } else {
        opts.legend.clone()
    };
    let subplots = build_subplots(&records, &names, &keys, opts.x)?;
    let img = render(
        &subplots,
        &RenderOptions {
            width,
            height,
            title: opts.title.clone(),
            x: opts.x,
        },
    )?;
    let write_err = |source| PlotError::Write {
        path: out.display().to_string(),
        source,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| write_err(image::ImageError::IoError(e)))?;
    }
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let written = img
        .save_with_format(&tmp, image::ImageFormat::Png)
        .and_then(|()| std::fs::rename(&tmp, out).map_err(image::ImageError::IoError));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(write_err)
}

/// `out` must be a `.png` path that is none of `logs` (compared as files, so that
/// `./log.jsonl` and a link to it count as the log).
fn check_out(logs: &[PathBuf], out: &Path) -> Result<(), PlotError> {
    let shown = || out.display().to_string();
    if !out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        return Err(PlotError::Extension { path: shown() });
    }
    if logs.iter().any(|log| crate::paths::same_file(log, out)) {
        return Err(PlotError::OutIsInput { path: shown() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mona_data::draw::FONT;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1e-300)
    }

    /// The properties every tick set must have: round step, evenly spaced, covering the
    /// data, few ticks.
    fn covers(lo: f64, hi: f64, target: usize) -> Ticks {
        let t = nice_ticks(lo, hi, target);
        let mantissa = t.step / 10f64.powi(t.step.log10().floor() as i32);
        assert!(
            [1.0, 2.0, 5.0, 10.0].iter().any(|&n| close(mantissa, n)),
            "step {} is not 1, 2 or 5 x 10^k",
            t.step
        );
        assert!(
            t.lo() <= lo.min(hi) && t.hi() >= lo.max(hi),
            "{t:?} does not cover [{lo}, {hi}]"
        );
        assert!((3..=12).contains(&t.values.len()), "{t:?}");
        for pair in t.values.windows(2) {
            assert!(
                close(pair[1] - pair[0], t.step),
                "{t:?} is not evenly spaced"
            );
        }
        t
    }

    /// [`covers`], and the axis extends less than one step beyond the data at either end.
    fn check(lo: f64, hi: f64, target: usize) -> Ticks {
        let t = covers(lo, hi, target);
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        assert!(
            t.lo() > lo - t.step * 1.0001 && t.hi() < hi + t.step * 1.0001,
            "{t:?} wastes more than a step around [{lo}, {hi}]"
        );
        t
    }

    fn assert_values(t: &Ticks, expected: &[f64]) {
        assert_eq!(t.values.len(), expected.len(), "{t:?}");
        for (a, b) in t.values.iter().zip(expected) {
            assert!(close(*a, *b), "{t:?} vs {expected:?}");
        }
    }

    #[test]
    fn ticks_of_unit_range() {
        let t = check(0.0, 1.0, 6);
        assert_values(&t, &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(
            format_ticks(&t.values, t.step),
            ["0", "0.2", "0.4", "0.6", "0.8", "1"]
        );
        check(0.0, 1.0, 3);
        check(0.0, 1.0, 10);
    }

    #[test]
    fn ticks_of_small_range() {
        let t = check(0.0013, 0.0021, 5);
        assert!(close(t.step, 2e-4));
        assert_values(&t, &[0.0012, 0.0014, 0.0016, 0.0018, 0.002, 0.0022]);
        assert_eq!(
            format_ticks(&t.values, t.step),
            ["1.2e-3", "1.4e-3", "1.6e-3", "1.8e-3", "2e-3", "2.2e-3"]
        );
    }

    #[test]
    fn ticks_of_iterations() {
        let t = check(120.0, 980.0, 5);
        assert_values(&t, &[0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        assert_eq!(
            format_ticks(&t.values, t.step),
            ["0", "200", "400", "600", "800", "1000"]
        );
        check(120.0, 980.0, 8);
    }

    #[test]
    fn ticks_of_learning_rates_use_exponents() {
        let t = check(0.0, 0.001, 6);
        assert_eq!(
            format_ticks(&t.values, t.step),
            ["0", "2e-4", "4e-4", "6e-4", "8e-4", "1e-3"]
        );
        let big = check(0.0, 2.0e6, 5);
        assert_eq!(format_ticks(&big.values, big.step)[1], "5e5");
        let iters = check(0.0, 160_000.0, 9);
        assert_eq!(format_ticks(&iters.values, iters.step)[8], "160000");
        assert_eq!(
            format_ticks(&[0.0, 0.005, 0.01], 0.005),
            ["0", "0.005", "0.01"]
        );
        assert_eq!(format_ticks(&[0.5], 0.1), ["0.5"]);
        assert_eq!(format_ticks(&[-0.5, 0.0, 0.5], 0.5), ["-0.5", "0", "0.5"]);
    }

    #[test]
    fn degenerate_ranges_do_not_panic() {
        let t = covers(0.52, 0.52, 5);
        assert!(t.lo() < 0.52 && t.hi() > 0.52);
        let zero = covers(0.0, 0.0, 5);
        assert!(zero.lo() < 0.0 && zero.hi() > 0.0);
        check(5.0, -5.0, 5);
        for (lo, hi) in [
            (f64::NAN, 1.0),
            (f64::NEG_INFINITY, f64::INFINITY),
            (-1e308, 1e308),
            (0.0, 1e-300),
        ] {
            let t = nice_ticks(lo, hi, 5);
            assert!(t.values.len() >= 2, "{t:?}");
            let _ = format_ticks(&t.values, t.step);
        }
    }

    #[test]
    fn resumed_iterations_keep_the_later_record() {
        let text = r#"{"mode":"train","epoch":1,"iter":10,"loss":1.0}
{"mode":"train","epoch":1,"iter":20,"loss":0.9}

{"mode":"train","epoch":1,"iter":20,"loss":0.8}
{"mode":"val","epoch":1,"iter":20,"accuracy_top-1":50.0,"note":"x","bad":null}
"#;
        let records = parse_log("log.jsonl", text).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].values["loss"], 0.8);
        assert_eq!(records[2].mode.as_deref(), Some("val"));
        assert!(!records[2].values.contains_key("bad"));
        let err = parse_log("log.jsonl", "{}\n[1]\n").unwrap_err().to_string();
        assert!(
            err.starts_with("log.jsonl:2: expected a JSON object"),
            "{err}"
        );
        let err = parse_log("a.jsonl", "{}\n{\"loss\": }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("a.jsonl:2: malformed JSON at column"),
            "{err}"
        );
        assert!(!err.contains("line 1"), "{err}");
    }

    #[test]
    fn epoch_axis_averages_train_records() {
        let text = r#"{"mode":"train","epoch":1,"iter":1,"loss":1.0}
{"mode":"train","epoch":1,"iter":2,"loss":0.5}
{"mode":"train","epoch":2,"iter":3,"loss":0.25}
"#;
        let records = parse_log("log.jsonl", text).unwrap();
        let points = points_by_mode(&records, "loss", XAxis::Epoch);
        assert_eq!(points[&Some("train".into())], [(1.0, 0.75), (2.0, 0.25)]);
    }

    #[test]
    fn legend_names_tell_logs_apart() {
        let paths = |p: &[&str]| p.iter().map(PathBuf::from).collect::<Vec<_>>();
        assert_eq!(log_names(&paths(&["a.jsonl", "b.jsonl"])), ["a", "b"]);
        assert_eq!(
            log_names(&paths(&["w/run1/log.jsonl", "w/run2/log.jsonl"])),
            ["run1", "run2"]
        );
        assert_eq!(
            log_names(&paths(&["x/log.jsonl", "y/x/log.jsonl"])),
            ["x/log.jsonl", "y/x/log.jsonl"]
        );
    }

    #[test]
    fn font_covers_the_tick_alphabet() {
        for c in "0123456789.-_+e%: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".chars() {
            assert!(FONT.iter().any(|(k, _)| *k == c), "no glyph for {c:?}");
        }
        let chars: BTreeSet<char> = FONT.iter().map(|(k, _)| *k).collect();
        assert_eq!(chars.len(), FONT.len(), "a character is in the font twice");
        for (c, rows) in &FONT {
            assert!(
                rows.iter().all(|r| *r < 32),
                "{c:?} is wider than 5 columns"
            );
        }
        assert_eq!(glyph('\u{e9}'), glyph('?'));
    }
}
