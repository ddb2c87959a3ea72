//! The verdict: the safe capacity of each configuration, with the evidence of its first
//! shortfall, at the top of the page and under each campaign's table.

use std::fmt::Write as _;

use crate::capacity::{self, Capacity};
use crate::row::{num, rows};
use crate::searched;
use loadgen_model::result::CampaignResult;

use super::escape::esc;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    if !r.capacities.is_empty() {
        return searched(h, r);
    }
    h.push_str("<section id=\"verdict\" class=\"verdict\">\n<h2>Verdict: safe capacity per configuration</h2>\n<ul>\n");
    let caps = capacity::safe_capacity(r);
    if caps.is_empty() {
        h.push_str("<li>No step in this run.</li>\n");
    }
    for c in &caps {
        let _ = writeln!(h, "<li>{}</li>", verdict_with_evidence(c));
    }
    let _ = writeln!(
        h,
        "</ul>\n<p>Safe capacity is the highest offered rate at which a valid, uninterrupted step \
         had at least {} % of its requests counted by the service's own counter (the client's 2xx \
         share stands in only where the counter was not read, and the line says so); the knee \
         lies between it and the lowest rate that fell short.</p>\n</section>",
        num(capacity::SAFE_RATIO * 100.0, 0)
    );
}

pub(super) fn verdict_html(c: &Capacity) -> String {
    let s = esc(&c.sentence());
    // Bold the configuration, the part a reader scans for.
    match s.split_once(": ") {
        Some((cfg, rest)) => format!("<strong>{cfg}</strong>: {rest}"),
        None => s,
    }
}

/// The verdict with the evidence of the first failing step under it.
fn verdict_with_evidence(c: &Capacity) -> String {
    match &c.failed_evidence {
        Some(e) => format!(
            "{}<br><span class=\"evidence\">First shortfall {}</span>",
            verdict_html(c),
            esc(e)
        ),
        None => verdict_html(c),
    }
}

/// The verdict of a run with a capacity search: each searched configuration's capacity and
/// first failure, then the safe capacity of the listed steps, if any.
fn searched(h: &mut String, r: &CampaignResult) {
    h.push_str("<section id=\"verdict\" class=\"verdict\">\n<h2>Verdict: capacity per configuration</h2>\n<ul>\n");
    for c in &r.capacities {
        let _ = writeln!(
            h,
            "<li><strong>{}: {}</strong>: {}</li>",
            esc(&c.campaign),
            esc(&searched::label(c)),
            esc(&c.sentence())
        );
    }
    let listed: Vec<_> = rows(r)
        .into_iter()
        .filter(|row| !r.is_probe(&row.id()))
        .collect();
    for c in capacity::for_rows(&listed) {
        let _ = writeln!(h, "<li>{}</li>", verdict_with_evidence(&c));
    }
    let slos: Vec<String> = r
        .searches
        .iter()
        .map(|s| format!("{}: {}", s.campaign, s.slo.describe()))
        .collect();
    let _ = writeln!(
        h,
        "</ul>\n<p>Capacity is the highest offered rate whose every probe met the SLO ({}) as a \
         valid step; the interval runs up to the lowest rate that failed, and the spread says how \
         far above the capacity a repeat still passed.</p>\n</section>",
        esc(&slos.join("; "))
    );
}
