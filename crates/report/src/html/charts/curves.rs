//! Curves against the offered rate, one per configuration: the share counted and answered
//! OK, latency, and the rate the generator achieved. Only valid, uninterrupted steps stand on a
//! curve.

use crate::capacity::Capacity;
use crate::chart::{self, LineChart, Series, Stroke};
use crate::row::StepRow;

use super::super::figure::figure;
use super::super::numbers::{number_table, Layout};

/// Writes the three curve charts (the first only when not `ratio_shown` already).
pub(super) fn write(h: &mut String, caps: &[Capacity], all: &[StepRow], ratio_shown: bool) {
    if !ratio_shown {
        ratio(h, caps, all);
    }
    latency(h, caps, all);
    achieved(h, caps, all);
}

/// Counted and client-ok share vs offered rate.
pub(super) fn ratio(h: &mut String, caps: &[Capacity], all: &[StepRow]) {
    let counted = per_config(caps, all, |r| r.counted_pct);
    let client = per_config(caps, all, |r| r.client_ok_pct);
    let top = counted
        .iter()
        .chain(&client)
        .flatten()
        .map(|p| p.1 * 1.05)
        .fold(105.0, f64::max);
    let spec = LineChart {
        // 100 % always in view; a counter that counted more than was sent stays in view too.
        y_range: Some((0.0, top)),
        ..rate_chart(
            "Share of requests counted and answered OK vs offered rate",
            "share of intended requests (%)",
            paired_series(caps, ("counted", &counted), ("client ok", &client)),
        )
    };
    figure(
        h,
        "chart-ratio",
        chart::line(&spec),
        CAPTION_RATIO,
        &number_table(all, Layout::ByRate, &["counted %", "client ok %"], |r| {
            vec![r.counted_cell(), r.client_ok_cell()]
        }),
    );
}

/// p99 and p50 latency vs offered rate.
fn latency(h: &mut String, caps: &[Capacity], all: &[StepRow]) {
    // A log axis has no place for 0 ms.
    let p50 = per_config(caps, all, |r| r.p50_ms.filter(|v| *v > 0.0));
    let p99 = per_config(caps, all, |r| r.p99_ms.filter(|v| *v > 0.0));
    let spec = LineChart {
        log_y: true,
        ..rate_chart(
            "Latency from the due time vs offered rate (log scale)",
            "latency (ms, log scale)",
            paired_series(caps, ("p99", &p99), ("p50", &p50)),
        )
    };
    figure(
        h,
        "chart-latency",
        chart::line(&spec),
        CAPTION_LATENCY,
        &number_table(
            all,
            Layout::ByRate,
            &["p50 (ms)", "p99 (ms)", "max (ms)"],
            |r| vec![r.p50_cell(), r.p99_cell(), r.max_cell()],
        ),
    );
}

/// Achieved vs offered rate, against the diagonal of a generator that kept up.
fn achieved(h: &mut String, caps: &[Capacity], all: &[StepRow]) {
    let spec = LineChart {
        diagonal: true,
        ..rate_chart(
            "Rate the generator achieved vs offered rate",
            "achieved send rate (req/s)",
            achieved_series(caps, all),
        )
    };
    figure(
        h,
        "chart-achieved",
        chart::line(&spec),
        CAPTION_ACHIEVED,
        &number_table(
            all,
            Layout::ByRate,
            &[
                "achieved (req/s)",
                "schedule lag p99 (ms)",
                "generator CPU (cores)",
            ],
            |r| {
                vec![
                    r.achieved_cell(),
                    r.lag_p99_cell(),
                    r.generator_cores_cell(),
                ]
            },
        ),
    );
}

/// One curve per configuration, then every step left off the curves.
fn achieved_series(caps: &[Capacity], all: &[StepRow]) -> Vec<Series> {
    let achieved = per_config(caps, all, |r| r.achieved_rps);
    let mut series: Vec<Series> = caps
        .iter()
        .zip(achieved)
        .enumerate()
        .map(|(i, (c, points))| Series {
            label: c.label(),
            colour: i,
            stroke: Stroke::Solid,
            points,
        })
        .collect();
    // Invalid steps matter most here: a generator that could not keep up is why a step is
    // invalid, so they are shown, as crosses off the curves.
    let mut invalid: Vec<(f64, f64)> = all
        .iter()
        .filter(|r| !plotted(r))
        .filter_map(|r| r.achieved_rps.map(|a| (r.rate_rps, a)))
        .collect();
    sort_points(&mut invalid);
    series.push(Series {
        label: "invalid or interrupted steps".into(),
        colour: 6,
        stroke: Stroke::Points,
        points: invalid,
    });
    series
}

/// A chart against the offered rate, linear y from 0, no diagonal; the three share one frame
/// so they line up on the page.
fn rate_chart(title: &str, y_label: &str, series: Vec<Series>) -> LineChart {
    LineChart {
        title: title.into(),
        x_label: "offered rate (req/s)".into(),
        y_label: y_label.into(),
        series,
        log_y: false,
        y_range: None,
        diagonal: false,
        size: (880, 460),
    }
}

/// The series (configuration) a step belongs to: its index in `caps`, the run's
/// configurations in capacity order.
fn series_index(caps: &[Capacity], row: &StepRow) -> usize {
    caps.iter()
        .position(|c| {
            c.replicas == row.replicas
                && c.cpu_limit_cores == row.cpu_limit_cores
                && c.store == row.store
        })
        .unwrap_or(0)
}

/// Steps that may stand on a curve: valid and complete.
fn plotted(row: &StepRow) -> bool {
    row.valid && !row.interrupted
}

/// Two series per configuration, one colour each: `solid` drawn solid, `dashed` dashed.
fn paired_series(
    caps: &[Capacity],
    solid: (&str, &[Vec<(f64, f64)>]),
    dashed: (&str, &[Vec<(f64, f64)>]),
) -> Vec<Series> {
    let mut series = Vec::new();
    for (i, c) in caps.iter().enumerate() {
        for (name, points, stroke) in [
            (solid.0, solid.1, Stroke::Solid),
            (dashed.0, dashed.1, Stroke::Dashed),
        ] {
            series.push(Series {
                label: format!("{name} — {}", c.label()),
                colour: i,
                stroke,
                points: points[i].clone(),
            });
        }
    }
    series
}

/// The points of each configuration's curve: `value` of its plotted steps against their rate.
fn per_config(
    caps: &[Capacity],
    all: &[StepRow],
    value: impl Fn(&StepRow) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new(); caps.len()];
    for row in all.iter().filter(|r| plotted(r)) {
        if let Some(v) = value(row) {
            out[series_index(caps, row)].push((row.rate_rps, v));
        }
    }
    for pts in &mut out {
        sort_points(pts);
    }
    out
}

/// Sorts points by x, then y: curves are drawn in order, and ties need a fixed order for
/// byte-identical output.
fn sort_points(points: &mut [(f64, f64)]) {
    points.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
}

const CAPTION_RATIO: &str =
    "Solid: counted by the service's own counter (TD4's \"success\"). Dashed: 2xx answers \
    seen by the generator. A gap between them means answered-but-not-counted or \
    counted-but-timed-out requests.";
const CAPTION_LATENCY: &str =
    "Latency is measured from when each request was due, so a generator or server that falls \
    behind shows up here (no coordinated omission). Solid: p99; dashed: p50.";
const CAPTION_ACHIEVED: &str =
    "Points on the dashed diagonal mean the generator sent at the rate it was asked to; below \
    it, the generator (not the service) was the limit. Crosses: invalid or interrupted steps \
    (an interrupted step sent for only part of its duration).";
