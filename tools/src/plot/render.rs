//! Drawing the subplots with plotters, as a PNG (bitmap backend, the shipped font) or an SVG.

use std::sync::OnceLock;

use image::{Rgb, RgbImage};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::{BACKGROUND, FRAME, GRID, INK, LEGEND_BORDER, PlotError, Series, Subplot, XAxis};

/// DejaVu Sans (Bitstream Vera licence, `tools/assets/DejaVuSans.LICENSE`): the PNG's text.
static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
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

/// The sizes for the image, once it is known that every subplot fits and the font is
/// registered (both backends lay text out with it).
fn prepare(subplots: &[Subplot], opts: &RenderOptions) -> Result<Sizes, PlotError> {
    if subplots.is_empty() {
        return Err(PlotError::NoKeys);
    }
    let sizes = Sizes::of(opts.width, opts.height);
    check_room(subplots, opts, sizes)?;
    register_font()?;
    Ok(sizes)
}

/// The subplots as an RGB image of `opts.width` x `opts.height`.
///
/// [`PlotError::TooSmall`] when a subplot would have no room for its axes.
pub fn render_png(subplots: &[Subplot], opts: &RenderOptions) -> Result<RgbImage, PlotError> {
    let sizes = prepare(subplots, opts)?;
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
    let sizes = prepare(subplots, opts)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (opts.width, opts.height)).into_drawing_area();
        draw(root, subplots, opts, sizes).map_err(|e| PlotError::Draw(e.to_string()))?;
    }
    Ok(svg)
}
