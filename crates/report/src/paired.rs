//! The report of a `loadgen compare` ([`CompareResult`]): the verdict per configuration with
//! its ratio and interval, and both sides' capacity curves — as Markdown for a CI job's
//! summary, and as a self-contained HTML page with the curves drawn.

use std::fmt::Write;

use crate::chart::{self, LineChart, Series, Stroke};
use loadgen_model::compare::{CompareResult, ConfigurationComparison, SideCapacity, Verdict};

/// The one line a terminal and a job summary lead with.
pub fn verdict_line(c: &CompareResult) -> String {
    let worst = c
        .configurations
        .iter()
        .find(|x| x.verdict == c.verdict)
        .map(|x| format!(": {} {} — {}", x.campaign, x.configuration, x.reason))
        .unwrap_or_default();
    let head = match c.verdict {
        Verdict::Regressed => "REGRESSION",
        Verdict::Improved => "improved",
        Verdict::Unchanged => "no regression",
        Verdict::NotComparable => "could not compare",
    };
    let error = c
        .error
        .as_deref()
        .map(|e| format!(" ({e})"))
        .unwrap_or_default();
    format!("{head}{worst}{error}")
}

fn rate(r: Option<f64>) -> String {
    r.map_or("—".into(), |r| format!("{r:.0}"))
}

fn ratio(c: &ConfigurationComparison) -> String {
    match (c.ratio, c.ratio_low, c.ratio_high) {
        (Some(r), Some(l), Some(h)) => format!("{r:.3} [{l:.3}, {h:.3}]"),
        _ => "—".into(),
    }
}

/// "1×: 12/12 … " — the side's curve, one rate per cell.
fn curve(s: &SideCapacity) -> String {
    s.curve
        .iter()
        .map(|p| format!("{:.0}: {}/{}", p.rate_rps, p.passed, p.runs))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The comparison as GitHub-flavoured Markdown (the job summary).
pub fn markdown(c: &CompareResult) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "## Capacity: {}\n", verdict_line(c));
    let _ = writeln!(
        s,
        "base `{}` vs head `{}`, probes interleaved on one machine, {} search(es) per side, \
         {} probes in {:.0} s. Rule: regression when head/base < {:.2} and the whole {:.0} % \
         bootstrap interval ({} resamples) is below {:.3}.\n",
        c.base.scenario,
        c.head.scenario,
        c.repeats,
        c.order.len(),
        c.wall_s,
        1.0 - c.rule.tolerance,
        c.rule.level * 100.0,
        c.rule.resamples,
        c.rule.interval_edges().0
    );
    s.push_str("| configuration | base req/s | head req/s | head/base [interval] | verdict |\n");
    s.push_str("|---|---:|---:|---|---|\n");
    for x in &c.configurations {
        let _ = writeln!(
            s,
            "| {} {} | {} | {} | {} | **{}** |",
            x.campaign,
            x.configuration,
            rate(x.base.capacity_rps),
            rate(x.head.capacity_rps),
            ratio(x),
            x.verdict.as_str()
        );
    }
    s.push_str("\nCapacity curves (rate: passed/runs):\n\n");
    for x in &c.configurations {
        for (side, cap) in [("base", &x.base), ("head", &x.head)] {
            let name = format!("{} {}", x.campaign, x.configuration);
            let _ = writeln!(s, "- {name} {side}: {}", curve(cap));
        }
        let _ = writeln!(s, "- why: {}", x.reason);
    }
    s
}

/// The two capacity curves of a configuration: the share of probes that passed at each rate.
pub fn curves_chart(x: &ConfigurationComparison) -> Result<String, chart::ChartError> {
    let series = |label: &str, colour, stroke, s: &SideCapacity| Series {
        label: format!("{label} (knee {} req/s)", rate(s.capacity_rps)),
        colour,
        stroke,
        points: s
            .curve
            .iter()
            .map(|p| {
                (
                    p.rate_rps,
                    100.0 * f64::from(p.passed) / f64::from(p.runs.max(1)),
                )
            })
            .collect(),
    };
    chart::line(&LineChart {
        title: format!("{} {}: probes that passed", x.campaign, x.configuration),
        x_label: "offered rate (req/s)".into(),
        y_label: "passed (%)".into(),
        series: vec![
            series("base", 0, Stroke::Solid, &x.base),
            series("head", 1, Stroke::Dashed, &x.head),
        ],
        log_y: false,
        y_range: Some((0.0, 105.0)),
        diagonal: false,
        size: (760, 360),
    })
}
