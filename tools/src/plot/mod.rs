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

mod read;
mod render;
mod subplots;

use std::path::{Path, PathBuf};

use image::Rgb;

pub use read::{Record, log_names, parse_log, read_log};
pub use render::{RenderOptions, render_png, render_svg};
pub use subplots::{Series, Subplot, build_subplots};

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
    use super::subplots::points_by_mode;
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
