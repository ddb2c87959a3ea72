//! The step timelines section: one chart per step of what was sent, answered and dropped each
//! second and the p99 of that second, with its numbers; long steps are bucketed.

use std::fmt::Write as _;

use crate::chart::{self, TimelineChart};
use crate::row::{num, rows, StepRow};
use loadgen_model::result::{CampaignResult, StepResult};

use super::escape::esc;
use super::figure::figure;
use super::numbers::td;

/// At most this many points per step timeline (chart and numbers); longer steps are bucketed.
pub const MAX_TIMELINE_POINTS: usize = 120;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    h.push_str(
        "<section id=\"timelines\">\n<h2>Step timelines</h2>\n<p>Per second of each step, by due \
         time: requests sent, answered OK, failed, and dropped by the generator when there were \
         drops (left axis), and the p99 latency of that second (right axis, black).</p>\n",
    );
    for row in rows(r) {
        step_timeline(h, &r.steps[row.index - 1], &row);
    }
    h.push_str("</section>\n");
}

/// One step's figure, or a line saying it has no timeline (the id stays, for links).
fn step_timeline(h: &mut String, step: &StepResult, row: &StepRow) {
    let id = format!("chart-timeline-{}", row.index);
    if step.timeline.is_empty() {
        let _ = writeln!(
            h,
            "<p id=\"{id}\">Step {} {}: no timeline recorded.</p>",
            row.index,
            esc(&row.key())
        );
        return;
    }
    let tl = downsample(step);
    let bucket = tl.first().map(|p| p.bucket_s).unwrap_or(1);
    let caption = if bucket > 1 {
        format!("Averaged over {bucket} s buckets (p99: the worst second of each bucket).")
    } else {
        String::new()
    };
    figure(
        h,
        &id,
        chart::timeline(&chart_spec(row, &tl)),
        &caption,
        &numbers(&tl),
    );
}

/// The step's chart: sent, ok, failed (and dropped) per second on the left axis, p99 on the right.
fn chart_spec(row: &StepRow, tl: &[TimelineBucket]) -> TimelineChart {
    let series = |value: fn(&TimelineBucket) -> f64| tl.iter().map(value).collect::<Vec<f64>>();
    TimelineChart {
        title: format!(
            "#{} {} — {} req/s, {}",
            row.index,
            row.key(),
            row.rate_cell(),
            row.configuration_label()
        ),
        t_s: series(|p| p.t_s),
        rates: vec![
            ("sent".into(), 0, series(|p| p.sent)),
            ("ok".into(), 2, series(|p| p.ok)),
            ("failed".into(), 3, series(|p| p.failed)),
        ]
        .into_iter()
        .chain(
            // Drops are drawn only when there were any, to keep quiet charts quiet.
            tl.iter()
                .any(|p| p.dropped > 0.0)
                .then(|| ("dropped".into(), 4, series(|p| p.dropped))),
        )
        .collect(),
        p99_ms: tl.iter().map(|p| p.p99_ms).collect(),
        size: (560, 280),
    }
}

/// The timeline's points as a table, one row per (bucketed) second.
fn numbers(tl: &[TimelineBucket]) -> String {
    let mut table = String::from("<table><thead><tr><th>t (s)</th><th>sent/s</th><th>ok/s</th><th>failed/s</th><th>dropped/s</th><th>p99 (ms)</th></tr></thead><tbody>\n");
    for p in tl {
        let _ = write!(
            table,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            num(p.t_s, 0),
            num(p.sent, 1),
            num(p.ok, 1),
            num(p.failed, 1),
            num(p.dropped, 1)
        );
        td(&mut table, p.p99_ms.map(|v| num(v, 1)));
        table.push_str("</tr>\n");
    }
    table.push_str("</tbody></table>");
    table
}

/// One point of a (possibly bucketed) timeline, rates per second.
struct TimelineBucket {
    t_s: f64,
    bucket_s: usize,
    sent: f64,
    ok: f64,
    failed: f64,
    dropped: f64,
    p99_ms: Option<f64>,
}

/// Buckets a long timeline to at most [`MAX_TIMELINE_POINTS`] points: counts become per-second
/// averages, p99 the worst second (percentiles cannot be averaged).
fn downsample(step: &StepResult) -> Vec<TimelineBucket> {
    let n = step.timeline.len();
    let k = n.div_ceil(MAX_TIMELINE_POINTS).max(1);
    step.timeline
        .chunks(k)
        .map(|c| {
            let len = c.len() as f64;
            TimelineBucket {
                t_s: f64::from(c[0].t_s),
                bucket_s: k,
                sent: c.iter().map(|p| p.sent as f64).sum::<f64>() / len,
                ok: c.iter().map(|p| p.ok as f64).sum::<f64>() / len,
                failed: c.iter().map(|p| p.failed as f64).sum::<f64>() / len,
                dropped: c.iter().map(|p| p.dropped as f64).sum::<f64>() / len,
                p99_ms: c.iter().filter_map(|p| p.p99_ms).reduce(f64::max),
            }
        })
        .collect()
}
