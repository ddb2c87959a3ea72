//! Findings on the page: the one way a finding reads as a list item, wherever it is listed
//! (under its step's row, or in the run findings section that gathers those attached to no
//! row, worst first).

use std::fmt::Write as _;

use crate::row::unattached_findings;
use crate::table::severity_word;
use loadgen_model::result::{CampaignResult, Finding};

use super::escape::esc;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    let rest = unattached_findings(r);
    if rest.is_empty() {
        return;
    }
    h.push_str("<section id=\"findings\">\n<h2>Run findings</h2>\n<ul class=\"findings\">\n");
    let mut sorted = rest;
    // Worst first, then in recorded order (stable sort).
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted {
        // Out of its step's row, a finding must say which step it is about.
        let about = f
            .step
            .as_ref()
            .map(|s| format!(" (step {})", esc(&s.to_string())))
            .unwrap_or_default();
        let _ = writeln!(h, "{}", item(f, &about));
    }
    h.push_str("</ul>\n</section>\n");
}

/// A finding as an `<li>`: severity, check, then `about` (already HTML) and the message.
pub(super) fn item(f: &Finding, about: &str) -> String {
    let w = severity_word(f.severity);
    format!(
        "<li class=\"sev-{w}\"><b>{w}</b> <code>{}</code>{about}: {}</li>",
        esc(f.check.as_str()),
        esc(&f.message)
    )
}
