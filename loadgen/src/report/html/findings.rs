//! The run findings section: findings attached to no step of the tables, worst first.

use std::fmt::Write as _;

use crate::report::row::unattached_findings;
use crate::report::table::severity_word;
use crate::result::CampaignResult;

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
        let w = severity_word(f.severity);
        let about = f
            .step
            .as_ref()
            .map(|s| format!(" (step {})", esc(&s.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<li class=\"sev-{w}\"><b>{w}</b> <code>{}</code>{about}: {}</li>",
            esc(f.check.as_str()),
            esc(&f.message)
        );
    }
    h.push_str("</ul>\n</section>\n");
}
