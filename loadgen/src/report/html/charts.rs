//! The charts section: curves of each configuration against the offered rate, and per-replica
//! bars per step, each with its caption and its numbers.

use crate::report::capacity::{self, Capacity};
use crate::report::chart::{self, BarChart, BarGroup, LineChart, Series, Stroke};
use crate::report::row::{rows, StepRow, TABLE_LIST};
use crate::result::CampaignResult;

use super::figure::figure;
use super::numbers::{number_table, Layout};

/// The configurations of the run in capacity order, with each step's series index.
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
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    }
    out
}

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    let all = rows(r);
    let caps = capacity::safe_capacity(r);
    h.push_str(
        "<section id=\"charts\">\n<h2>Charts</h2>\n<p>Curves join the valid, uninterrupted steps \
         of one configuration; invalid or interrupted steps are left off the curves (they are \
         marked in the tables above). Per-step bar charts number the steps as in the tables below \
         each chart.</p>\n",
    );

    // 1. Counted and client-ok share vs offered rate.
    let counted = per_config(&caps, &all, |r| r.counted_pct);
    let client = per_config(&caps, &all, |r| r.client_ok_pct);
    let ratio_top = counted
        .iter()
        .chain(&client)
        .flatten()
        .map(|p| p.1 * 1.05)
        .fold(105.0, f64::max);
    let series = paired_series(&caps, ("counted", &counted), ("client ok", &client));
    let spec = LineChart {
        title: "Share of requests counted and answered OK vs offered rate".into(),
        x_label: "offered rate (req/s)".into(),
        y_label: "share of intended requests (%)".into(),
        series,
        log_y: false,
        // 100 % always in view; a counter that counted more than was sent stays in view too.
        y_range: Some((0.0, ratio_top)),
        diagonal: false,
        size: (880, 460),
    };
    figure(
        h,
        "chart-ratio",
        chart::line(&spec),
        CAPTION_RATIO,
        &number_table(&all, Layout::ByRate, &["counted %", "client ok %"], |r| {
            vec![r.counted_cell(), r.client_ok_cell()]
        }),
    );

    // 2. Latency.
    let p50 = per_config(&caps, &all, |r| r.p50_ms.filter(|v| *v > 0.0));
    let p99 = per_config(&caps, &all, |r| r.p99_ms.filter(|v| *v > 0.0));
    let series = paired_series(&caps, ("p99", &p99), ("p50", &p50));
    let spec = LineChart {
        title: "Latency from the due time vs offered rate (log scale)".into(),
        x_label: "offered rate (req/s)".into(),
        y_label: "latency (ms, log scale)".into(),
        series,
        log_y: true,
        y_range: None,
        diagonal: false,
        size: (880, 460),
    };
    figure(
        h,
        "chart-latency",
        chart::line(&spec),
        CAPTION_LATENCY,
        &number_table(
            &all,
            Layout::ByRate,
            &["p50 (ms)", "p99 (ms)", "max (ms)"],
            |r| vec![r.p50_cell(), r.p99_cell(), r.max_cell()],
        ),
    );

    // 3. Achieved vs offered.
    let achieved = per_config(&caps, &all, |r| r.achieved_rps);
    let mut series: Vec<Series> = caps
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            label: c.label(),
            colour: i,
            stroke: Stroke::Solid,
            points: achieved[i].clone(),
        })
        .collect();
    // Invalid steps matter most here: a generator that could not keep up is why a step is
    // invalid, so they are shown, as crosses off the curves.
    let mut invalid: Vec<(f64, f64)> = all
        .iter()
        .filter(|r| !plotted(r))
        .filter_map(|r| r.achieved_rps.map(|a| (r.rate_rps, a)))
        .collect();
    invalid.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    series.push(Series {
        label: "invalid or interrupted steps".into(),
        colour: 6,
        stroke: Stroke::Points,
        points: invalid,
    });
    let spec = LineChart {
        title: "Rate the generator achieved vs offered rate".into(),
        x_label: "offered rate (req/s)".into(),
        y_label: "achieved send rate (req/s)".into(),
        series,
        log_y: false,
        y_range: None,
        diagonal: true,
        size: (880, 460),
    };
    figure(
        h,
        "chart-achieved",
        chart::line(&spec),
        CAPTION_ACHIEVED,
        &number_table(
            &all,
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

    // 4–6. Per replica, per step.
    let max_replicas = all
        .iter()
        .map(|r| {
            r.cpu_cores_per_replica
                .len()
                .max(r.requests_per_replica.len())
        })
        .max()
        .unwrap_or(0);
    let groups = |value: &dyn Fn(&StepRow, usize) -> Option<f64>| -> Vec<BarGroup> {
        (0..max_replicas)
            .map(|k| BarGroup {
                label: format!("replica {}", k + 1),
                colour: k,
                values: all.iter().map(|r| value(r, k)).collect(),
            })
            .collect()
    };
    let cpu = BarChart {
        title: "CPU used per replica, per step".into(),
        x_label: "step # (see table)".into(),
        y_label: "CPU used (cores)".into(),
        categories: all.len(),
        groups: groups(&|r, k| r.cpu_cores_per_replica.get(k).copied().flatten()),
        y_max: None,
        size: (880, 400),
    };
    figure(
        h,
        "chart-cpu",
        chart::bars(&cpu),
        CAPTION_CPU,
        &number_table(
            &all,
            Layout::PerStep,
            &[
                "CPU limit",
                "CPU used (cores, per replica)",
                "node busy (cores)",
            ],
            |r| {
                vec![
                    r.cpu_limit_cell(),
                    r.cpu_per_replica_cell(TABLE_LIST),
                    r.node_cores_cell(),
                ]
            },
        ),
    );
    let thr = BarChart {
        title: "Throttled share of CFS periods per replica, per step".into(),
        x_label: "step # (see table)".into(),
        y_label: "throttled periods (%)".into(),
        categories: all.len(),
        groups: groups(&|r, k| r.throttled_pct_per_replica.get(k).copied().flatten()),
        y_max: Some(100.0),
        size: (880, 400),
    };
    figure(
        h,
        "chart-throttled",
        chart::bars(&thr),
        CAPTION_THROTTLED,
        &number_table(&all, Layout::PerStep, &["throttled % (per replica)"], |r| {
            vec![r.throttled_cell(TABLE_LIST)]
        }),
    );
    let share = |r: &StepRow, k: usize| -> Option<f64> {
        let total: u64 = r.requests_per_replica.iter().flatten().sum();
        let v = r.requests_per_replica.get(k).copied().flatten()?;
        (total > 0).then(|| v as f64 * 100.0 / total as f64)
    };
    let spread = BarChart {
        title: "Share of requests answered by each replica, per step".into(),
        x_label: "step # (see table)".into(),
        y_label: "share of the step's requests (%)".into(),
        categories: all.len(),
        groups: groups(&share),
        y_max: Some(100.0),
        size: (880, 400),
    };
    figure(
        h,
        "chart-spread",
        chart::bars(&spread),
        CAPTION_SPREAD,
        &number_table(
            &all,
            Layout::PerStep,
            &["requests per replica", "clicks per replica"],
            |r| {
                vec![
                    r.requests_per_replica_cell(TABLE_LIST),
                    r.clicks_per_replica_cell(TABLE_LIST),
                ]
            },
        ),
    );
    h.push_str("</section>\n");
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
const CAPTION_CPU: &str =
    "CPU time each replica's cgroup used over the step, in cores. Compare with the CPU limit \
    column: a replica pinned at its limit is throttled, one well below it with a low counted \
    share points elsewhere.";
const CAPTION_THROTTLED: &str =
    "Share of 100 ms scheduler periods in which the replica hit its CPU quota and was paused. \
    No bar: not measured (e.g. no cgroup).";
const CAPTION_SPREAD: &str =
    "How the kernel (SO_REUSEPORT) or the Service spread the load: with 2 replicas an even \
    spread is 50 % each.";
