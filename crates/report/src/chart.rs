//! Charts as inline SVG strings, drawn with plotters' SVG backend (text becomes `<text>`, so no
//! system font is needed and the output is byte-stable). Colours come from the Okabe–Ito
//! palette, which stays distinguishable for colour-blind readers; a second series of the same
//! configuration differs by dash and marker, not by colour alone.

use plotters::chart::{ChartContext, DualCoordChartContext, SeriesLabelStyle};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

/// Okabe–Ito colours, most distinct first (yellow last: weak on white).
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),   // blue
    (230, 159, 0),   // orange
    (0, 158, 115),   // bluish green
    (213, 94, 0),    // vermillion
    (204, 121, 167), // reddish purple
    (86, 180, 233),  // sky blue
    (0, 0, 0),       // black
    (240, 228, 66),  // yellow
];

/// The palette colour of series `i` (wrapping).
pub fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// The palette colour of series `i` as CSS, for legends drawn in HTML.
pub fn css_colour(i: usize) -> String {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// How a line series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stroke {
    /// Solid line with filled circles.
    Solid,
    /// Dashed line with hollow triangles.
    Dashed,
    /// Crosses, no line: points that belong to no curve (e.g. invalid steps).
    Points,
}

/// One line of an x/y chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// Palette index.
    pub colour: usize,
    pub stroke: Stroke,
    /// Points sorted by x; unmeasured points are simply absent.
    pub points: Vec<(f64, f64)>,
}

/// An x/y line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Logarithmic y axis (latency).
    pub log_y: bool,
    /// Fixed y range; otherwise from the data.
    pub y_range: Option<(f64, f64)>,
    /// Draw the y = x reference line (achieved vs offered).
    pub diagonal: bool,
    /// Size of the plot; the legend under it adds one row per two series.
    pub size: (u32, u32),
}

/// One group of bars (e.g. one replica) across the categories.
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    pub label: String,
    pub colour: usize,
    /// One value per category; `None` draws nothing (unmeasured is not 0).
    pub values: Vec<Option<f64>>,
}

/// A grouped bar chart over numbered categories (steps 1..=n).
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Number of categories; category `i` (0-based) is labelled `i + 1`.
    pub categories: usize,
    pub groups: Vec<BarGroup>,
    pub y_max: Option<f64>,
    pub size: (u32, u32),
}

/// A per-second timeline of one step: counts on the left axis, p99 on the right.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineChart {
    pub title: String,
    /// Seconds from the step start of each point (bucket start when downsampled).
    pub t_s: Vec<f64>,
    /// (label, palette index, values per point) drawn on the left axis, requests per second.
    pub rates: Vec<(String, usize, Vec<f64>)>,
    pub p99_ms: Vec<Option<f64>>,
    pub size: (u32, u32),
}

/// Why plotters could not draw a chart, as plotters prints its error (`Debug`: its drawing
/// errors carry the backend's cause only there). A report shows it in the chart's place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ChartError(String);

/// A linear x/y plane, as the timeline's two axes are.
type Plane = Cartesian2d<RangedCoordf64, RangedCoordf64>;

pub(super) fn fail<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError(format!("{e:?}"))
}

pub(super) const FONT: &str = "sans-serif";

/// Draws a line chart; `Err` carries plotters' message (the report shows it instead).
pub fn line(spec: &LineChart) -> Result<String, ChartError> {
    let (x0, x1) = padded(
        spec.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0)),
        0.0,
    );
    let ys = spec
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1));
    if spec.log_y {
        let (lo, hi) = spec.y_range.unwrap_or_else(|| log_bounds(ys));
        draw_line(spec, x0..x1, (lo..hi).log_scale(), hi)
    } else {
        let (lo, hi) = spec.y_range.unwrap_or_else(|| {
            let (_, hi) = padded(ys, 0.0);
            (0.0, hi)
        });
        draw_line(spec, x0..x1, lo..hi, hi)
    }
}

/// `y_hi` is the top of the y axis: the diagonal must stop inside the plot, because plotters
/// clamps each coordinate of an outside point separately, which would bend the line.
fn draw_line<Y>(
    spec: &LineChart,
    x: std::ops::Range<f64>,
    y: Y,
    y_hi: f64,
) -> Result<String, ChartError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    // A configuration with no plottable step gets no line and no legend entry: nothing to
    // point at.
    let drawn: Vec<&Series> = spec
        .series
        .iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    let entries = line_legend(spec.diagonal, &drawn);
    let rows = entries.len().div_ceil(2) as u32;
    let legend_h = if rows == 0 { 0 } else { rows * LEGEND_ROW + 10 };
    let (w, h) = spec.size;
    svg_document((w, h + legend_h), |root| {
        let (top, bottom) = root.split_vertically(h);
        let mut chart = frame(&top, &spec.title)
            .build_cartesian_2d(x.clone(), y)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc(&spec.x_label)
            .y_desc(&spec.y_label)
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .max_light_lines(0)
            .draw()
            .map_err(fail)?;
        if spec.diagonal {
            let end = x.end.min(y_hi);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x.start, x.start), (end, end)],
                    4,
                    4,
                    GREY.stroke_width(1),
                ))
                .map_err(fail)?;
        }
        for s in drawn {
            draw_series(&mut chart, s)?;
        }
        draw_legend(&bottom, &entries, w)
    })
}

/// The legend of a line chart: the diagonal first when there is one, then each drawn series.
/// It goes under the plot, two entries per row: inside the plot it would hide data wherever
/// the data happens to be.
fn line_legend(diagonal: bool, drawn: &[&Series]) -> Vec<LegendEntry> {
    let mut entries: Vec<LegendEntry> = Vec::new();
    if diagonal {
        entries.push(LegendEntry {
            label: "y = x (kept up)".into(),
            colour: GREY,
            stroke: Stroke::Dashed,
            marker: false,
        });
    }
    entries.extend(drawn.iter().map(|s| LegendEntry {
        label: s.label.clone(),
        colour: colour(s.colour),
        stroke: s.stroke,
        marker: true,
    }));
    entries
}

/// One series of a line chart, its line and markers as its [`Stroke`] says.
fn draw_series<DB, CT>(chart: &mut ChartContext<'_, DB, CT>, s: &Series) -> Result<(), ChartError>
where
    DB: DrawingBackend,
    CT: CoordTranslate<From = (f64, f64)>,
{
    let c = colour(s.colour);
    let pts = &s.points;
    match s.stroke {
        Stroke::Solid => {
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                .map_err(fail)?;
            chart
                .draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))
                .map_err(fail)?;
        }
        Stroke::Dashed => {
            chart
                .draw_series(DashedLineSeries::new(pts.clone(), 6, 4, c.stroke_width(2)))
                .map_err(fail)?;
            chart
                .draw_series(
                    pts.iter()
                        .map(|p| TriangleMarker::new(*p, 4, c.stroke_width(1))),
                )
                .map_err(fail)?;
        }
        Stroke::Points => {
            chart
                .draw_series(pts.iter().map(|p| Cross::new(*p, 4, c.stroke_width(2))))
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// One SVG document of `size`, white: `draw` paints it, then it is written out.
pub(super) fn svg_document(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), ChartError>,
) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(fail)?;
        draw(&root)?;
        root.present().map_err(fail)?;
    }
    Ok(svg)
}

/// The title and margins line and bar charts share, so that their plots line up on the page.
pub(super) fn frame<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &'b str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(42)
        .y_label_area_size(64);
    builder
}

/// The boxed legend in the upper right of bar and timeline charts, their room for it kept free
/// of data.
pub(super) fn draw_series_labels<'a, DB, CT>(
    mut labels: SeriesLabelStyle<'a, '_, DB, CT>,
    font_px: u32,
) -> Result<(), ChartError>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    labels
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, font_px))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(fail)
}

const GREY: RGBColor = RGBColor(120, 120, 120);

/// Height of one legend row under a line chart, pixels.
const LEGEND_ROW: u32 = 18;

/// One entry of a legend drawn under a chart.
struct LegendEntry {
    label: String,
    colour: RGBColor,
    stroke: Stroke,
    marker: bool,
}

/// Draws the entries in two columns, each with a sample of its line and marker.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    width: u32,
) -> Result<(), ChartError> {
    let col_w = (width as i32 - 76) / 2;
    for (i, e) in entries.iter().enumerate() {
        let x = 76 + (i as i32 % 2) * col_w;
        let y = 4 + (i as i32 / 2) * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        let line = e.colour.stroke_width(2);
        match e.stroke {
            Stroke::Solid => area.draw(&PathElement::new([(x, y), (x + 26, y)], line)),
            Stroke::Dashed => area
                .draw(&PathElement::new([(x, y), (x + 8, y)], line))
                .and_then(|_| area.draw(&PathElement::new([(x + 18, y), (x + 26, y)], line))),
            Stroke::Points => Ok(()),
        }
        .map_err(fail)?;
        if e.marker {
            match e.stroke {
                Stroke::Solid => area.draw(&Circle::new((x + 13, y), 3, e.colour.filled())),
                Stroke::Dashed => area.draw(&TriangleMarker::new(
                    (x + 13, y),
                    4,
                    e.colour.stroke_width(1),
                )),
                Stroke::Points => area.draw(&Cross::new((x + 13, y), 4, e.colour.stroke_width(2))),
            }
            .map_err(fail)?;
        }
        area.draw(&Text::new(e.label.clone(), (x + 34, y - 6), (FONT, 12)))
            .map_err(fail)?;
    }
    Ok(())
}

/// Draws a grouped bar chart over steps 1..=n.
pub fn bars(spec: &BarChart) -> Result<String, ChartError> {
    let n = spec.categories.max(1) as f64;
    // Empty room right of the last step, so the legend never hides a bar.
    let legend_room = (n * 0.22).max(1.2);
    let y_max = spec.y_max.unwrap_or_else(|| {
        padded(
            spec.groups
                .iter()
                .flat_map(|g| g.values.iter().flatten().copied()),
            0.0,
        )
        .1
    });
    svg_document(spec.size, |root| {
        let mut chart = frame(root, &spec.title)
            .build_cartesian_2d(0.5..n + 0.5 + legend_room, 0.0..y_max)
            .map_err(fail)?;
        chart
            .configure_mesh()
            .x_desc(&spec.x_label)
            .y_desc(&spec.y_label)
            .x_labels(spec.categories.max(1) + legend_room.ceil() as usize)
            .y_label_formatter(&tick)
            .x_label_formatter(&|x: &f64| {
                // Only whole numbers up to n are steps; plotters may also ask for in-between
                // ticks, or ticks in the legend's room.
                if (x - x.round()).abs() < 1e-6 && *x <= n + 0.01 {
                    format!("{}", x.round() as i64)
                } else {
                    String::new()
                }
            })
            .disable_x_mesh()
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .max_light_lines(0)
            .draw()
            .map_err(fail)?;
        draw_bar_groups(&mut chart, &spec.groups)?;
        draw_series_labels(chart.configure_series_labels(), 12)
    })
}

/// The groups side by side within each step's unit of width, each with its legend entry.
fn draw_bar_groups<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    groups: &[BarGroup],
) -> Result<(), ChartError>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    let k = groups.len().max(1) as f64;
    let width = 0.8 / k;
    for (gi, g) in groups.iter().enumerate() {
        let c = colour(g.colour);
        let left = |i: usize| (i + 1) as f64 - 0.4 + gi as f64 * width;
        chart
            .draw_series(g.values.iter().enumerate().filter_map(|(i, v)| {
                v.map(|v| Rectangle::new([(left(i), 0.0), (left(i) + width, v)], c.filled()))
            }))
            .map_err(fail)?
            .label(&g.label)
            .legend(move |(px, py)| Rectangle::new([(px, py - 5), (px + 12, py + 5)], c.filled()));
    }
    Ok(())
}

/// Draws a step's timeline: request rates on the left axis, p99 latency on the right.
pub fn timeline(spec: &TimelineChart) -> Result<String, ChartError> {
    let (_, t1) = padded(spec.t_s.iter().copied(), 0.0);
    let t1 = t1.max(1.0);
    // Headroom above the data keeps the legend (upper right) off the lines.
    let (_, r1) = padded(spec.rates.iter().flat_map(|r| r.2.iter().copied()), 0.0);
    let r1 = r1 * TIMELINE_HEADROOM;
    let (_, p1) = padded(spec.p99_ms.iter().flatten().copied(), 0.0);
    let p1 = p1 * TIMELINE_HEADROOM;
    svg_document(spec.size, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(&spec.title, (FONT, 15))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .right_y_label_area_size(56)
            .build_cartesian_2d(0.0..t1, 0.0..r1)
            .map_err(fail)?
            .set_secondary_coord::<std::ops::Range<f64>, std::ops::Range<f64>>(0.0..t1, 0.0..p1);
        chart
            .configure_mesh()
            .x_desc("time since step start (s)")
            .y_desc("requests per second")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .max_light_lines(0)
            .draw()
            .map_err(fail)?;
        chart
            .configure_secondary_axes()
            .y_desc("p99 latency (ms)")
            .y_label_formatter(&tick)
            .label_style((FONT, 11))
            .axis_desc_style((FONT, 12))
            .draw()
            .map_err(fail)?;
        draw_rates(&mut chart, spec)?;
        draw_p99(&mut chart, spec)?;
        draw_series_labels(chart.configure_series_labels(), 11)
    })
}

/// The request rates of a timeline, on the left axis.
fn draw_rates<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    spec: &TimelineChart,
) -> Result<(), ChartError>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate<From = (f64, f64)>,
{
    for (label, ci, values) in &spec.rates {
        let c = colour(*ci);
        chart
            .draw_series(LineSeries::new(
                spec.t_s.iter().copied().zip(values.iter().copied()),
                c.stroke_width(2),
            ))
            .map_err(fail)?
            .label(label.as_str())
            .legend(move |(px, py)| PathElement::new([(px, py), (px + 18, py)], c.stroke_width(2)));
    }
    Ok(())
}

/// The p99 latency of a timeline, on the right axis, in black.
fn draw_p99<'a, DB: DrawingBackend + 'a>(
    chart: &mut DualCoordChartContext<'a, DB, Plane, Plane>,
    spec: &TimelineChart,
) -> Result<(), ChartError> {
    let pc = colour(6);
    // p99 is drawn only where the second had answers; gaps stay gaps.
    let p99: Vec<(f64, f64)> = spec
        .t_s
        .iter()
        .zip(&spec.p99_ms)
        .filter_map(|(t, p)| p.map(|p| (*t, p)))
        .collect();
    chart
        .draw_secondary_series(LineSeries::new(p99, pc.stroke_width(1)))
        .map_err(fail)?
        .label("p99 latency (right axis, black)")
        .legend(move |(px, py)| PathElement::new([(px, py), (px + 18, py)], pc.stroke_width(1)));
    Ok(())
}

/// Vertical room above a timeline's data, as a factor of its maximum.
const TIMELINE_HEADROOM: f64 = 1.6;

/// An axis tick: whole numbers without decimals, others with at most two.
pub(super) fn tick(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        // `+ 0.0` turns -0 into 0, so no "-0" tick appears.
        format!("{:.0}", v.round() + 0.0)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A range covering the values with 8 % headroom, from `floor` when all are above it; a
/// non-empty range even for no or equal values.
pub(super) fn padded(values: impl Iterator<Item = f64>, floor: f64) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (floor, floor + 1.0);
    }
    let lo = lo.min(floor);
    let hi = if hi > lo {
        hi + (hi - lo) * 0.08
    } else {
        lo + 1.0
    };
    (lo, hi)
}

/// Decade bounds for a log axis covering the positive values.
fn log_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    (lo, hi)
}
