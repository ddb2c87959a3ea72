//! Number tables: the numbers under each chart, and the one way a table cell shows a value or
//! its absence.

use std::fmt::Write as _;

use crate::row::{StepRow, MISSING};

use super::escape::esc;

/// How the rows under a chart are keyed: like the chart's x axis, so a reader can find a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Against the offered rate: step, configuration, rate, the chart's columns, validity.
    ByRate,
    /// Per step: the step's number (the bar's label), step, configuration, the chart's columns.
    PerStep,
}

/// The numbers under a chart: one row per step, the leading columns given by `layout`.
pub(super) fn number_table(
    all: &[StepRow],
    layout: Layout,
    cols: &[&str],
    cells: impl Fn(&StepRow) -> Vec<Option<String>>,
) -> String {
    let by_rate = layout == Layout::ByRate;
    let mut t = String::from(if by_rate {
        "<table><thead><tr><th class=\"l\">step</th><th class=\"l\">configuration</th><th>rate (req/s)</th>"
    } else {
        "<table><thead><tr><th>#</th><th class=\"l\">step</th><th class=\"l\">configuration</th>"
    });
    for c in cols {
        let _ = write!(t, "<th>{}</th>", esc(c));
    }
    t.push_str(if by_rate {
        "<th class=\"l\">valid</th></tr></thead><tbody>\n"
    } else {
        "</tr></thead><tbody>\n"
    });
    for r in all {
        let (key, config) = (esc(&r.key()), esc(&r.configuration_label()));
        let _ = if by_rate {
            write!(
                t,
                "<tr><td class=\"l\">{key}</td><td class=\"l\">{config}</td><td>{}</td>",
                r.rate_cell()
            )
        } else {
            write!(
                t,
                "<tr><td>{}</td><td class=\"l\">{key}</td><td class=\"l\">{config}</td>",
                r.index
            )
        };
        for c in cells(r) {
            td(&mut t, c);
        }
        if by_rate {
            let _ = writeln!(t, "<td class=\"l\">{}</td></tr>", esc(&r.valid_cell()));
        } else {
            t.push_str("</tr>\n");
        }
    }
    t.push_str("</tbody></table>");
    t
}

pub(super) fn td(h: &mut String, cell: Option<String>) {
    match cell {
        Some(c) => {
            let _ = write!(h, "<td>{}</td>", esc(&c));
        }
        None => {
            let _ = write!(h, "<td class=\"missing\">{MISSING}</td>");
        }
    }
}
