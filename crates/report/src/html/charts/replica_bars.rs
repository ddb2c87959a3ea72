//! Bars per step, one per replica: the CPU each used, how often it was throttled, and its
//! share of the step's requests.

use crate::chart::{self, BarChart, BarGroup};
use crate::row::{StepRow, TABLE_LIST};

use super::super::figure::figure;
use super::super::numbers::{number_table, Layout};

/// Writes the three per-replica bar charts.
pub(super) fn write(h: &mut String, all: &[StepRow]) {
    cpu(h, all);
    throttled(h, all);
    spread(h, all);
}

/// CPU used by each replica's cgroup, per step.
fn cpu(h: &mut String, all: &[StepRow]) {
    let spec = replica_bars(
        all,
        "CPU used per replica, per step",
        "CPU used (cores)",
        None,
        |r, k| r.cpu_cores_per_replica.get(k).copied().flatten(),
    );
    figure(
        h,
        "chart-cpu",
        chart::bars(&spec),
        CAPTION_CPU,
        &number_table(
            all,
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
}

/// Throttled share of CFS periods of each replica, per step.
fn throttled(h: &mut String, all: &[StepRow]) {
    let spec = replica_bars(
        all,
        "Throttled share of CFS periods per replica, per step",
        "throttled periods (%)",
        Some(100.0),
        |r, k| r.throttled_pct_per_replica.get(k).copied().flatten(),
    );
    figure(
        h,
        "chart-throttled",
        chart::bars(&spec),
        CAPTION_THROTTLED,
        &number_table(all, Layout::PerStep, &["throttled % (per replica)"], |r| {
            vec![r.throttled_cell(TABLE_LIST)]
        }),
    );
}

/// How each step's requests were spread over the replicas.
fn spread(h: &mut String, all: &[StepRow]) {
    let spec = replica_bars(
        all,
        "Share of requests answered by each replica, per step",
        "share of the step's requests (%)",
        Some(100.0),
        request_share,
    );
    figure(
        h,
        "chart-spread",
        chart::bars(&spec),
        CAPTION_SPREAD,
        &number_table(
            all,
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
}

/// Replica `k`'s share of the step's requests, in %; none when nothing was counted per replica.
fn request_share(r: &StepRow, k: usize) -> Option<f64> {
    let total: u64 = r.requests_per_replica.iter().flatten().sum();
    let v = r.requests_per_replica.get(k).copied().flatten()?;
    (total > 0).then(|| v as f64 * 100.0 / total as f64)
}

/// A chart of one bar per replica per step; `value(row, k)` is replica `k`'s bar, `None` no
/// bar (unmeasured is not 0). Every step gets as many groups as the widest step has replicas.
fn replica_bars(
    all: &[StepRow],
    title: &str,
    y_label: &str,
    y_max: Option<f64>,
    value: impl Fn(&StepRow, usize) -> Option<f64>,
) -> BarChart {
    let replicas = all
        .iter()
        .map(|r| {
            r.cpu_cores_per_replica
                .len()
                .max(r.requests_per_replica.len())
        })
        .max()
        .unwrap_or(0);
    BarChart {
        title: title.into(),
        x_label: "step # (see table)".into(),
        y_label: y_label.into(),
        categories: all.len(),
        groups: (0..replicas)
            .map(|k| BarGroup {
                label: format!("replica {}", k + 1),
                colour: k,
                values: all.iter().map(|r| value(r, k)).collect(),
            })
            .collect(),
        y_max,
        size: (880, 400),
    }
}

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
