//! Interval charts: one bar per named category (a configuration) and group (this run, the
//! baseline), from 0 to a value, with a whisker up to where the value's interval ends — a
//! capacity and its first failing rate — and an optional reference line (100 % scaling). Drawn
//! with the line and bar charts' frame, fonts and palette ([`super::chart`]), as inline SVG.

use plotters::prelude::*;

use super::chart::{
    colour, draw_series_labels, fail, frame, padded, svg_document, tick, ChartError, FONT,
};

/// One bar of a group: its value, and where its interval ends (`None`: no whisker).
pub type Bar = Option<(f64, Option<f64>)>;

/// A group of bars across the categories (one per category; `None` draws nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalGroup {
    pub label: String,
    pub colour: usize,
    pub bars: Vec<Bar>,
}

/// The chart.
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalChart {
    pub title: String,
    pub y_label: String,
    /// Short names under the bars (full names go in the numbers under the chart).
    pub categories: Vec<String>,
    pub groups: Vec<IntervalGroup>,
    /// A horizontal reference line and its legend entry.
    pub reference: Option<(f64, String)>,
    pub size: (u32, u32),
}

/// Draws the chart; `Err` carries plotters' message (the report shows it instead).
pub fn draw(spec: &IntervalChart) -> Result<String, ChartError> {
    let n = spec.categories.len().max(1) as f64;
    let values = spec
        .groups
        .iter()
        .flat_map(|g| g.bars.iter().flatten())
        .flat_map(|(v, top)| [Some(*v), *top])
        .flatten()
        .chain(spec.reference.as_ref().map(|r| r.0));
    // Room above the tallest whisker for the legend.
    let y_max = padded(values, 0.0).1 * 1.25;
    svg_document(spec.size, |root| {
        let mut chart = frame(root, &spec.title)
            .build_cartesian_2d(0.5..n + 0.5, 0.0..y_max)
            .map_err(fail)?;
        let names = spec.categories.clone();
        chart
            .configure_mesh()
            .y_desc(&spec.y_label)
            .x_labels(names.len().max(1))
            .y_label_formatter(&tick)
            .x_label_formatter(&|x: &f64| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 1.0 {
                    names.get(i as usize - 1).cloned().unwrap_or_default()
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
        let k = spec.groups.len().max(1) as f64;
        let width = 0.7 / k;
        for (gi, g) in spec.groups.iter().enumerate() {
            let c = colour(g.colour);
            let left = |i: usize| (i + 1) as f64 - 0.35 + gi as f64 * width;
            let bars = g.bars.iter().enumerate().filter_map(|(i, b)| {
                b.map(|(v, _)| Rectangle::new([(left(i), 0.0), (left(i) + width, v)], c.filled()))
            });
            chart
                .draw_series(bars)
                .map_err(fail)?
                .label(&g.label)
                .legend(move |(px, py)| {
                    Rectangle::new([(px, py - 5), (px + 12, py + 5)], c.filled())
                });
            let whiskers = g.bars.iter().enumerate().filter_map(|(i, b)| {
                let (v, top) = (*b)?;
                let mid = left(i) + width / 2.0;
                let cap = width / 4.0;
                let top = top?;
                Some(PathElement::new(
                    vec![(mid, v), (mid, top), (mid - cap, top), (mid + cap, top)],
                    RGBColor(60, 60, 60).stroke_width(2),
                ))
            });
            chart.draw_series(whiskers).map_err(fail)?;
        }
        if let Some((y, label)) = &spec.reference {
            let y = *y;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.5, y), (n + 0.5, y)],
                    RGBColor(120, 120, 120).stroke_width(1),
                )))
                .map_err(fail)?
                .label(label)
                .legend(move |(px, py)| {
                    PathElement::new(vec![(px, py), (px + 12, py)], RGBColor(120, 120, 120))
                });
        }
        draw_series_labels(chart.configure_series_labels(), 12)
    })
}
