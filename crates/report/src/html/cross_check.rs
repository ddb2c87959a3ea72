//! The cross-check section: the generator's, the direct probes' and Prometheus' view of each step
//! Prometheus watched, side by side, with the PromQL that was evaluated.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::row::{rows, StepRow, TABLE_LIST};
use loadgen_model::result::CampaignResult;

use super::escape::esc;
use super::numbers::td;

/// Generator, direct probes and Prometheus side by side, for steps Prometheus watched.
pub(super) fn write(h: &mut String, r: &CampaignResult) {
    let all = rows(r);
    let watched: Vec<&StepRow> = all
        .iter()
        .filter(|row| r.steps[row.index - 1].prometheus.is_some())
        .collect();
    h.push_str("<section id=\"cross-check\">\n<h2>Three views of each step: generator, direct probes, Prometheus</h2>\n");
    if watched.is_empty() {
        h.push_str("<p>Prometheus did not watch this run (run with <code>--prometheus</code> to add its view).</p>\n</section>\n");
        return;
    }
    views(h, &watched);
    queries(h, r, &watched);
    h.push_str("</section>\n");
}

/// One row per watched step: the same quantities as each of the three saw them.
fn views(h: &mut String, watched: &[&StepRow]) {
    h.push_str(
        "<table>\n<thead><tr><th class=\"l\" rowspan=\"2\">step</th><th colspan=\"2\">generator</th>\
         <th colspan=\"4\">direct probes</th><th colspan=\"4\">Prometheus</th></tr>\n\
         <tr><th>intended</th><th>2xx</th><th>counter delta</th><th>cgroup CPU (cores)</th>\
         <th>per replica</th><th>throttled %</th><th>counter increase</th><th>CPU (cores)</th>\
         <th>per replica</th><th>throttled %</th></tr></thead>\n<tbody>\n",
    );
    for row in watched {
        let cells = [
            Some(row.intended.to_string()),
            Some(row.ok.to_string()),
            row.counter_delta_cell(),
            row.cpu_total_cell(),
            row.cpu_per_replica_cell(TABLE_LIST),
            row.throttled_total_cell(),
            row.prom_counter_cell(),
            row.prom_cpu_cell(),
            row.prom_cpu_per_replica_cell(TABLE_LIST),
            row.prom_throttled_cell(),
        ];
        let _ = write!(h, "<tr><td class=\"l\">{}</td>", esc(&row.key()));
        for c in cells {
            td(h, c);
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

/// The PromQL behind Prometheus' numbers, folded away, so a reader can re-run a query.
fn queries(h: &mut String, r: &CampaignResult, watched: &[&StepRow]) {
    let queried: Vec<(&StepRow, &BTreeMap<String, String>)> = watched
        .iter()
        .filter_map(|row| {
            let p = r.steps[row.index - 1].prometheus.as_ref()?;
            (!p.queries.is_empty()).then_some((*row, &p.queries))
        })
        .collect();
    if queried.is_empty() {
        return;
    }
    h.push_str(
        "<details><summary>PromQL evaluated</summary>\n<table>\n<thead><tr><th \
         class=\"l\">step</th><th class=\"l\">value</th><th \
         class=\"l\">query</th></tr></thead>\n<tbody>\n",
    );
    for (row, queries) in queried {
        for (k, q) in queries {
            let _ = writeln!(
                h,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td></tr>",
                esc(&row.key()),
                esc(k),
                esc(q)
            );
        }
    }
    h.push_str("</tbody>\n</table>\n</details>\n");
}
