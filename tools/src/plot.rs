//! Training curves from the runner's `log.jsonl` files as a PNG or an SVG: mmdet's
//! `analyze_logs.py plot_curve` without Python or matplotlib.
//!
//! The charts are drawn by `plotters` (axes, ticks, grid, legends, PNG and SVG backends). The
//! tools must run on bare training machines without system fonts, so the PNG's text is set in
//! DejaVu Sans, shipped in `tools/assets` and compiled into the binary (the SVG names the
//! font and leaves the text to the viewer).
//!
//! The pieces, usable on their own: [`parse_log`] (records, with resumed runs deduplicated),
//! [`build_subplots`] (one subplot per key, one series per log and mode), [`render_png`] /
//! [`render_svg`] (the image), and [`plot_logs`], which is the `plot-log` binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use std::sync::OnceLock;

use image::{Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
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
const GRID: Rgb<u8> = Rgb([222, 222, 222]);
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
    #[error("{path}: cannot write the plot: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// plotters could not draw or the PNG could not be encoded.
    #[error("cannot draw the plot: {0}")]
    Draw(String),
    #[error("--out {path} is one of the logs to plot: refusing to write over an input")]
    OutIsInput { path: String },
    #[error("--out {path}: the plot is a PNG or an SVG; give the file a .png or .svg extension")]
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
// Drawing (plotters)
// ------------------------------------------------------------------------------------------

/// DejaVu Sans (Bitstream Vera licence, `tools/assets/DejaVuSans.LICENSE`): the PNG's text.
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
/// The family the charts ask for; the shipped font is registered under it.
const FAMILY: &str = "sans-serif";

/// Registers the shipped font with plotters once.
fn register_font() -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw(
            "the shipped font (DejaVuSans.ttf) cannot be read".into(),
        ))
    }
}

/// What the renderers need besides the subplots.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    pub width: u32,
    pub height: u32,
    pub title: Option<String>,
    pub x: XAxis,
}

/// Text and line sizes for an image: matplotlib's proportions at the default 960x540,
/// smaller on small images.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    tick: u32,
    caption: u32,
    title: u32,
    margin: u32,
    line: u32,
    marker: u32,
    x_area: u32,
    y_area: u32,
}

impl Sizes {
    fn of(width: u32, height: u32) -> Self {
        let side = width.min(height * 16 / 9);
        let tick = (side * 16 / 960).clamp(10, 28);
        Self {
            tick,
            caption: tick + 2,
            title: tick + 6,
            margin: tick / 2,
            line: (side / 320).clamp(2, 5),
            marker: (side / 320).clamp(2, 6),
            x_area: tick * 3 / 2,
            y_area: tick * 4,
        }
    }

    /// The least height one subplot needs: caption, plot area, tick labels.
    fn min_subplot_height(self, last: bool) -> u32 {
        let desc = if last { self.tick * 3 / 2 } else { 0 };
        self.caption + 2 * self.margin + 24 + self.x_area + desc
    }
}

/// Markers go on series whose points are at least 24 px apart on average (val metrics, a
/// short run, epoch summaries): there they show where the measurements are; on dense train
/// curves they would only thicken the line.
fn sparse(series: &Series, plot_w: u32) -> bool {
    series.points.len() <= 1 || (series.points.len() as u64) * 24 <= plot_w as u64
}

/// The range of `values` with a margin, never empty (one value, or none, still plots).
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
        let half = (lo.abs() * 0.05).max(0.5);
        return lo - half..hi + half;
    }
    let m = (hi - lo) * pad;
    lo - m..hi + m
}

/// A tick label: plain up to four decimals, exponent form for very large or small values
/// (`5e5`, `2.5e-5`, as matplotlib labels learning rates).
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&a) {
        let text = format!("{v:.2e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    trim_zeros(&format!("{v:.4}"))
}

fn trim_zeros(text: &str) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text.to_string()
    }
}

/// Fails unless every subplot has room for its caption, plot and labels.
fn check_room(subplots: &[Subplot], opts: &RenderOptions, sizes: Sizes) -> Result<(), PlotError> {
    let title = if opts.title.is_some() {
        sizes.title + sizes.margin * 2
    } else {
        0
    };
    let n = subplots.len() as u32;
    let per = opts.height.saturating_sub(title) / n.max(1);
    let wide_enough = opts.width > sizes.y_area + 2 * sizes.margin + 40;
    if !wide_enough || per < sizes.min_subplot_height(n == 1) {
        return Err(PlotError::TooSmall {
            width: opts.width,
            height: opts.height,
            subplots: subplots.len(),
        });
    }
    Ok(())
}

/// Draws the subplots stacked vertically on `root`.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    subplots: &[Subplot],
    opts: &RenderOptions,
    sizes: Sizes,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let ink = RGBColor(INK.0[0], INK.0[1], INK.0[2]);
    let root = match &opts.title {
        Some(title) => root.titled(title, (FAMILY, sizes.title).into_font().color(&ink))?,
        None => root,
    };
    let areas = root.split_evenly((subplots.len(), 1));
    let rgb = |c: Rgb<u8>| RGBColor(c.0[0], c.0[1], c.0[2]);
    for (i, (sub, area)) in subplots.iter().zip(&areas).enumerate() {
        let last = i + 1 == subplots.len();
        let x_range = padded_range(
            sub.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
            0.02,
        );
        let y_range = padded_range(
            sub.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
            0.05,
        );
        let x_area = sizes.x_area + if last { sizes.tick * 3 / 2 } else { 0 };
        let mut chart = ChartBuilder::on(area)
            .caption(&sub.key, (FAMILY, sizes.caption).into_font().color(&ink))
            .margin(sizes.margin)
            .x_label_area_size(x_area)
            .y_label_area_size(sizes.y_area)
            .build_cartesian_2d(x_range, y_range)?;
        let label_style = (FAMILY, sizes.tick).into_font().color(&ink);
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(rgb(BACKGROUND))
            .bold_line_style(rgb(GRID))
            .axis_style(rgb(FRAME))
            .label_style(label_style.clone())
            .axis_desc_style(label_style)
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v));
        if last {
            mesh.x_desc(opts.x.field());
        }
        mesh.draw()?;
        let plot_w = chart.plotting_area().dim_in_pixel().0;
        for series in &sub.series {
            let color = rgb(series.color);
            let style = color.stroke_width(sizes.line);
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(series.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
            if sparse(series, plot_w) {
                let marker = sizes.marker;
                chart.draw_series(
                    points
                        .iter()
                        .map(move |&p| Circle::new(p, marker, color.filled())),
                )?;
            }
        }
        if sub.legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(rgb(LEGEND_BORDER))
                .label_font((FAMILY, sizes.tick).into_font().color(&ink))
                .draw()?;
        }
    }
    root.present()
}

/// The subplots as an RGB image of `opts.width` x `opts.height`.
///
/// [`PlotError::TooSmall`] when a subplot would have no room for its axes.
pub fn render_png(subplots: &[Subplot], opts: &RenderOptions) -> Result<RgbImage, PlotError> {
    if subplots.is_empty() {
        return Err(PlotError::NoKeys);
    }
    let sizes = Sizes::of(opts.width, opts.height);
    check_room(subplots, opts, sizes)?;
    register_font()?;
    let mut pixels = vec![0u8; opts.width as usize * opts.height as usize * 3];
    {
        let root =
            BitMapBackend::with_buffer(&mut pixels, (opts.width, opts.height)).into_drawing_area();
        draw(root, subplots, opts, sizes).map_err(|e| PlotError::Draw(e.to_string()))?;
    }
    RgbImage::from_raw(opts.width, opts.height, pixels)
        .ok_or_else(|| PlotError::Draw("the image buffer has the wrong size".into()))
}

/// The subplots as an SVG document (the text in the viewer's sans-serif font).
pub fn render_svg(subplots: &[Subplot], opts: &RenderOptions) -> Result<String, PlotError> {
    if subplots.is_empty() {
        return Err(PlotError::NoKeys);
    }
    let sizes = Sizes::of(opts.width, opts.height);
    check_room(subplots, opts, sizes)?;
    register_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (opts.width, opts.height)).into_drawing_area();
        draw(root, subplots, opts, sizes).map_err(|e| PlotError::Draw(e.to_string()))?;
    }
    Ok(svg)
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

/// Reads `logs`, draws `opts.keys` and writes the PNG or SVG (by the extension) to `out`,
/// creating its directory. The file goes to a temporary file beside `out` first and replaces it only once complete, and
/// `out` must end in `.png` or `.svg` and be none of the logs, so that no input is ever overwritten.
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
    let render = RenderOptions {
        width,
        height,
        title: opts.title.clone(),
        x: opts.x,
    };
    let bytes = if is_svg(out) {
        render_svg(&subplots, &render)?.into_bytes()
    } else {
        let img = render_png(&subplots, &render)?;
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png)
            .map_err(|e| PlotError::Draw(format!("PNG encoding: {e}")))?;
        png.into_inner()
    };
    let write_err = |source| PlotError::Write {
        path: out.display().to_string(),
        source,
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = out.with_file_name(tmp_name);
    let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, out));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(write_err)
}

fn is_svg(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
}

/// `out` must be a `.png` or `.svg` path that is none of `logs` (compared as files, so that
/// `./log.jsonl` and a link to it count as the log).
fn check_out(logs: &[PathBuf], out: &Path) -> Result<(), PlotError> {
    let shown = || out.display().to_string();
    if !out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
        && !is_svg(out)
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
}
