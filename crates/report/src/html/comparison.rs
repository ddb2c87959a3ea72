//! The comparison with a baseline (`loadgen report --baseline`): each configuration's capacity
//! then and now, as a chart and as the table `loadgen check` prints, with its verdict.

use std::fmt::Write as _;

use crate::comparison::{cells, verdict_line, HEADERS};
use crate::interval_chart::{self, IntervalChart, IntervalGroup};
use loadgen_judge::comparison::Comparison;

use super::escape::esc;
use super::figure::figure;

/// The chart's numbers are the table right under it.
pub(super) const NUMBERS_BELOW: &str =
    "<p>The table under this chart holds every plotted number.</p>";

pub(super) fn write(h: &mut String, c: &Comparison) {
    h.push_str("<section id=\"comparison\">\n<h2>Compared with the baseline</h2>\n");
    for d in &c.differences {
        let _ = writeln!(h, "<p class=\"sev-warn\">{}</p>", esc(d));
    }
    let table = table(c);
    let names: Vec<String> = c
        .capacities
        .iter()
        .map(|r| r.configuration.clone())
        .collect();
    let side = |pick: fn(
        &loadgen_judge::comparison::CapacityRow,
    ) -> Option<&loadgen_model::capacity::Capacity>| {
        c.capacities
            .iter()
            .map(|r| pick(r).and_then(|c| c.capacity_rps.map(|v| (v, c.failed_rps))))
            .collect()
    };
    let svg = interval_chart::draw(&IntervalChart {
        title: "Capacity then (baseline) and now (this run)".into(),
        y_label: "capacity (req/s)".into(),
        categories: names,
        groups: vec![
            IntervalGroup {
                label: "baseline".into(),
                colour: 5,
                bars: side(|r| r.baseline.as_ref()),
            },
            IntervalGroup {
                label: "this run".into(),
                colour: 0,
                bars: side(|r| r.run.as_ref()),
            },
        ],
        reference: None,
        size: (880, 420),
    });
    figure(h, "chart-comparison", svg, CAPTION, NUMBERS_BELOW);
    h.push_str(&table);
    let _ = writeln!(
        h,
        "\n<p><strong>{}</strong></p>\n</section>",
        esc(&verdict_line(c))
    );
}

fn table(c: &Comparison) -> String {
    let mut t = String::from("<table class=\"comparison\"><thead><tr>");
    for (i, head) in HEADERS.iter().enumerate() {
        let class = if i == 0 || i + 1 == HEADERS.len() {
            " class=\"l\""
        } else {
            ""
        };
        let _ = write!(t, "<th{class}>{}</th>", esc(head));
    }
    t.push_str("</tr></thead><tbody>\n");
    for row in &c.capacities {
        let cells = cells(row);
        let last = cells.len() - 1;
        t.push_str("<tr>");
        for (i, cell) in cells.iter().enumerate() {
            let class = if i == 0 || i == last {
                " class=\"l\""
            } else {
                ""
            };
            let _ = write!(t, "<td{class}>{}</td>", esc(cell));
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</tbody></table>");
    t
}

const CAPTION: &str =
    "Bars: the capacity of each configuration in the baseline and in this run; whiskers up to \
    each one's first failing rate. A drop beyond the tolerance that the repeats' spread of both \
    runs does not explain is a regression.";
