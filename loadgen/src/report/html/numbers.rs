//! Number tables: the numbers under each chart, and the one way a table cell shows a value or
//! its absence.

use std::fmt::Write as _;

use crate::report::row::{StepRow, MISSING};

use super::escape::esc;

/// The numbers under a chart plotted against the offered rate: step, configuration, rate, the
/// chart's columns, validity.
pub(super) fn numbers(
    all: &[StepRow],
    head: &str,
    cols: &[&str],
    cells: impl Fn(&StepRow) -> Vec<Option<String>>,
) -> String {
    number_table(all, head, cols, true, cells)
}

/// The numbers under a chart plotted per step: step number, step, configuration, the chart's
/// columns.
pub(super) fn per_step_numbers(
    all: &[StepRow],
    head: &str,
    cols: &[&str],
    cells: impl Fn(&StepRow) -> Vec<Option<String>>,
) -> String {
    number_table(all, head, cols, false, cells)
}

/// One builder for both layouts: `by_rate` leads with the rate and ends with validity, else the
/// row leads with the step's number.
pub(super) fn number_table(
    all: &[StepRow],
    head: &str,
    cols: &[&str],
    by_rate: bool,
    cells: impl Fn(&StepRow) -> Vec<Option<String>>,
) -> String {
    let mut t = format!("<table><thead>{head}");
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
