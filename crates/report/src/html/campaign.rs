//! One section per campaign: its table of steps with each step's notes and findings under it,
//! its verdict, and every measured value of its steps folded away.

use std::fmt::Write as _;

use crate::row::{by_campaign, findings_for, StepRow, MISSING};
use crate::steps_csv;
use crate::table;
use crate::{capacity, searched};
use loadgen_model::result::CampaignResult;

use super::escape::{esc, slug};
use super::findings;
use super::numbers::td;
use super::verdict::verdict_html;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    for (campaign, rows) in by_campaign(r) {
        section(h, r, campaign.as_deref(), &rows);
    }
}

/// One campaign's section; `campaign` is `None` for steps outside any campaign.
fn section(h: &mut String, r: &CampaignResult, campaign: Option<&str>, rows: &[StepRow]) {
    let name = campaign.unwrap_or("(steps outside any campaign)");
    let _ = writeln!(
        h,
        "<section class=\"campaign\" id=\"campaign-{}\">\n<h2>Campaign {}</h2>",
        slug(name),
        esc(name)
    );
    if let Some(d) = r
        .campaigns
        .iter()
        .find(|c| Some(c.name.as_str()) == campaign)
        .and_then(|c| c.description.as_ref())
    {
        let _ = writeln!(h, "<p>{}</p>", esc(d));
    }
    steps_table(h, r, rows);
    let searched = searched::of_campaign(r, campaign);
    let verdicts: Vec<String> = if searched.is_empty() {
        capacity::for_rows(rows).iter().map(verdict_html).collect()
    } else {
        searched.iter().map(|c| esc(&searched::line(c))).collect()
    };
    let _ = writeln!(
        h,
        "<p><strong>Verdict:</strong> {}</p>",
        verdicts.join("; ")
    );
    all_values(h, r, rows);
    h.push_str("</section>\n");
}

/// The terminal table's columns, one row per step, each followed by a row of its notes.
fn steps_table(h: &mut String, r: &CampaignResult, rows: &[StepRow]) {
    h.push_str("<table class=\"steps\">\n<thead><tr>");
    let ncols = table::HEADERS.len();
    for (i, head) in table::HEADERS.iter().enumerate() {
        let class = if text_column(i, ncols) {
            " class=\"l\""
        } else {
            ""
        };
        let _ = write!(h, "<th{class}>{}</th>", esc(head));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        step_row(h, row);
        let notes = step_notes(r, row);
        if !notes.is_empty() {
            let _ = writeln!(
                h,
                "<tr class=\"findings\"><td colspan=\"{ncols}\"><ul class=\"findings\">{notes}</ul></td></tr>"
            );
        }
    }
    h.push_str("</tbody>\n</table>\n");
}

/// A step's row, marked when the step is invalid or was interrupted.
fn step_row(h: &mut String, row: &StepRow) {
    let class = match (row.valid, row.interrupted) {
        (false, _) => " class=\"invalid\"",
        (true, true) => " class=\"interrupted\"",
        _ => "",
    };
    let _ = write!(h, "<tr{class} id=\"step-{}\">", row.index);
    let cells = table::cells(row);
    for (i, c) in cells.iter().enumerate() {
        let mut cls = Vec::new();
        if text_column(i, cells.len()) {
            cls.push("l");
        }
        if c == MISSING {
            cls.push("missing");
        }
        let attr = if cls.is_empty() {
            String::new()
        } else {
            format!(" class=\"{}\"", cls.join(" "))
        };
        let _ = write!(h, "<td{attr}>{}</td>", esc(c));
    }
    h.push_str("</tr>\n");
}

/// The first (step) and last (notes) columns of the steps table hold text, aligned left.
fn text_column(i: usize, ncols: usize) -> bool {
    i == 0 || i == ncols - 1
}

/// The `<li>`s under a step: invalid reason, interruption, then every finding about it.
fn step_notes(r: &CampaignResult, row: &StepRow) -> String {
    let mut s = String::new();
    if !row.valid {
        let _ = write!(
            s,
            "<li class=\"sev-fail\"><b>invalid</b>: {}</li>",
            esc(row
                .invalid_reason
                .as_deref()
                .unwrap_or("no reason recorded"))
        );
    }
    if row.interrupted {
        s.push_str("<li class=\"sev-warn\"><b>interrupted</b>: counts cover only what ran</li>");
    }
    for note in crate::shards::notes(row) {
        let _ = write!(s, "<li class=\"sev-info\">{}</li>", esc(&note));
    }
    for f in findings_for(r, row) {
        s.push_str(&findings::item(f, ""));
    }
    s
}

/// Every `steps.csv` column of the campaign's steps, folded away.
fn all_values(h: &mut String, r: &CampaignResult, rows: &[StepRow]) {
    h.push_str("<details><summary>All measured values (the steps.csv columns)</summary>\n<table>\n<thead><tr>");
    for (name, doc) in steps_csv::columns(r) {
        let _ = write!(h, "<th title=\"{}\">{}</th>", esc(doc), esc(name));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        h.push_str("<tr>");
        for c in steps_csv::record(r, row) {
            // The CSV leaves an unmeasured value empty; the page says so.
            td(h, (!c.is_empty()).then_some(c));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</details>\n");
}
