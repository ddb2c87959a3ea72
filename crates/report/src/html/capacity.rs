//! The answer first, for a run with a capacity search: each configuration's capacity with its
//! interval under the SLO, the scaling efficiency of the replicated ones, their derived
//! figures, then the counted-vs-rate chart — all before the tables.

use std::fmt::Write as _;

use crate::chart::ChartError;
use crate::interval_chart::{self, IntervalChart, IntervalGroup};
use crate::row::num;
use crate::searched;
use loadgen_model::capacity::Capacity;
use loadgen_model::result::CampaignResult;

use super::charts;
use super::escape::esc;
use super::figure::figure;
use super::numbers::td;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    if r.capacities.is_empty() {
        return;
    }
    let slos: Vec<String> = r
        .searches
        .iter()
        .map(|s| format!("{} ({})", s.slo.describe(), s.campaign))
        .collect();
    let _ = writeln!(
        h,
        "<section id=\"capacity\">\n<h2>Capacity per configuration</h2>\n<p>Searched under the \
         SLO {}: the rate grows ×2 until a probe breaks it, the bracket is bisected, then both \
         ends are repeated. Every probe is a step in the tables below.</p>",
        esc(&slos.join("; "))
    );
    let caps: Vec<&Capacity> = r.capacities.iter().collect();
    let names = short_names(r, &caps);
    let numbers = table(&caps);
    figure(
        h,
        "chart-capacity",
        capacity_chart(&caps, &names),
        CAPTION_CAPACITY,
        &numbers,
    );
    if caps.iter().any(|c| c.topology.replicas > 1) {
        figure(
            h,
            "chart-scaling",
            scaling_chart(&caps, &names),
            CAPTION_SCALING,
            &numbers,
        );
    }
    h.push_str(&numbers);
    h.push('\n');
    charts::counted_vs_rate(h, r);
    h.push_str("</section>\n");
}

/// The configuration keys, qualified by campaign when the run searched more than one.
pub(super) fn short_names(r: &CampaignResult, caps: &[&Capacity]) -> Vec<String> {
    let qualify = r.searches.len() > 1;
    caps.iter()
        .map(|c| {
            if qualify {
                format!("{}/{}", c.campaign, c.configuration)
            } else {
                c.configuration.clone()
            }
        })
        .collect()
}

fn capacity_chart(caps: &[&Capacity], names: &[String]) -> Result<String, ChartError> {
    interval_chart::draw(&IntervalChart {
        title: "Capacity per configuration (whisker: up to the first failing rate)".into(),
        y_label: "offered rate (req/s)".into(),
        categories: names.to_vec(),
        groups: vec![IntervalGroup {
            label: "capacity: passed by majority".into(),
            colour: 0,
            bars: caps
                .iter()
                .map(|c| c.capacity_rps.map(|v| (v, c.failed_rps)))
                .collect(),
        }],
        reference: None,
        size: (880, 420),
    })
}

fn scaling_chart(caps: &[&Capacity], names: &[String]) -> Result<String, ChartError> {
    interval_chart::draw(&IntervalChart {
        title: "Scaling efficiency: capacity / (replicas × one replica's)".into(),
        y_label: "scaling efficiency (%)".into(),
        categories: names.to_vec(),
        groups: vec![IntervalGroup {
            label: "scaling efficiency".into(),
            colour: 2,
            bars: caps
                .iter()
                .map(|c| c.scaling_efficiency.map(|e| (e * 100.0, None)))
                .collect(),
        }],
        reference: Some((100.0, "linear scaling (100 %)".into())),
        size: (880, 360),
    })
}

/// The derived figures, one row per configuration, and each first failure's evidence.
fn table(caps: &[&Capacity]) -> String {
    let mut t = String::from("<table class=\"capacity\"><thead><tr>");
    for (i, head) in searched::HEADERS.iter().enumerate() {
        let class = if i == 0 { " class=\"l\"" } else { "" };
        let _ = write!(t, "<th{class}>{}</th>", esc(head));
    }
    t.push_str("<th class=\"l\">first failure</th></tr></thead><tbody>\n");
    for c in caps {
        let mut cells = searched::cells(c).into_iter();
        let first = cells.next().flatten().unwrap_or_default();
        let _ = write!(t, "<tr><td class=\"l\">{}</td>", esc(&first));
        for cell in cells {
            td(&mut t, cell);
        }
        let failure = c.first_failure.as_ref().map_or(String::new(), |f| {
            let causes: Vec<&str> = f.causes.iter().map(|c| c.as_str()).collect();
            format!(
                "{} at {} req/s: {}{}",
                f.step,
                num(f.rate_rps, 0),
                f.broken.join(", "),
                if causes.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", causes.join(", "))
                }
            )
        });
        let _ = writeln!(t, "<td class=\"l\">{}</td></tr>", esc(&failure));
    }
    t.push_str("</tbody></table>");
    t
}

const CAPTION_CAPACITY: &str =
    "Bar: the capacity, the highest rate whose every probe met the SLO. Whisker: up to the \
    lowest rate that failed, where the true capacity ends. A configuration without a bar \
    failed already at the lowest rate probed.";
const CAPTION_SCALING: &str =
    "100 % means N replicas took N times what one replica of the same CPU limit and store \
    took; less means the replicas competed for something they share (the machine's CPUs, the \
    store, the spread of connections).";
