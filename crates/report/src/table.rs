//! Terminal tables: one table per campaign in the shape of the TD4 report (rate, requests,
//! replicas, CPU limit, counted %, client ok %, CPU used per replica, throttled %, p50, p99,
//! valid), the notes on invalid or interrupted steps and their findings, and a one-line verdict.

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};

use loadgen_model::result::{CampaignResult, Severity};

use super::row::{by_campaign, findings_for, StepRow, MISSING, TABLE_LIST};
use super::{capacity, searched};

/// Column headers, units in brackets. "CPU used" lists one value per replica ("0.98 / 0.61"),
/// as TD4 did.
pub const HEADERS: [&str; 12] = [
    "step",
    "rate (req/s)",
    "requests",
    "replicas",
    "CPU limit",
    "counted %",
    "client ok %",
    "CPU used (cores)",
    "throttled %",
    "p50 (ms)",
    "p99 (ms)",
    "valid",
];

/// The cells of one step, in [`HEADERS`] order; unmeasured values are [`MISSING`].
pub fn cells(r: &StepRow) -> Vec<String> {
    let m = |c: Option<String>| c.unwrap_or_else(|| MISSING.to_string());
    vec![
        r.name.clone(),
        r.rate_cell(),
        r.intended.to_string(),
        m(r.replicas_cell()),
        m(r.cpu_limit_cell()),
        m(r.counted_cell()),
        m(r.client_ok_cell()),
        m(r.cpu_per_replica_cell(TABLE_LIST)),
        m(r.throttled_cell(TABLE_LIST)),
        m(r.p50_cell()),
        m(r.p99_cell()),
        r.valid_cell(),
    ]
}

/// Every campaign's table, notes and verdict, separated by blank lines.
pub fn render(result: &CampaignResult) -> String {
    let mut out = String::new();
    for (campaign, rows) in by_campaign(result) {
        if !out.is_empty() {
            out.push('\n');
        }
        let title = campaign
            .as_deref()
            .unwrap_or("(steps outside any campaign)");
        let description = result
            .campaigns
            .iter()
            .find(|c| Some(&c.name) == campaign.as_ref())
            .and_then(|c| c.description.clone());
        match description {
            Some(d) => out.push_str(&format!("Campaign {title} — {d}\n")),
            None => out.push_str(&format!("Campaign {title}\n")),
        }
        let mut builder = Builder::default();
        builder.push_record(HEADERS);
        for r in &rows {
            builder.push_record(cells(r));
        }
        let mut table = builder.build();
        table
            .with(Style::markdown())
            .modify(Columns::new(1..11), Alignment::right());
        out.push_str(&table.to_string());
        out.push('\n');
        for r in &rows {
            for note in notes(result, r) {
                out.push_str(&format!("  {note}\n"));
            }
        }
        let searched = searched::of_campaign(result, campaign.as_deref());
        if searched.is_empty() {
            let verdict: Vec<String> = capacity::for_rows(&rows)
                .iter()
                .map(capacity::Capacity::sentence)
                .collect();
            out.push_str(&format!("Verdict: {}\n", verdict.join("; ")));
        } else {
            out.push_str(&searched_table(&searched));
        }
    }
    if out.is_empty() {
        out.push_str("No step in this run.\n");
    }
    out
}

/// A search campaign's verdict: the capacity of each configuration in a sentence, then its
/// derived figures in a table.
fn searched_table(caps: &[&loadgen_model::capacity::Capacity]) -> String {
    let mut out = String::new();
    for c in caps {
        out.push_str(&format!("Capacity: {}\n", searched::line(c)));
    }
    let mut builder = Builder::default();
    builder.push_record(searched::HEADERS);
    for c in caps {
        let cells = searched::cells(c);
        builder.push_record(
            cells
                .into_iter()
                .map(|c| c.unwrap_or_else(|| MISSING.to_string())),
        );
    }
    let mut table = builder.build();
    table
        .with(Style::markdown())
        .modify(Columns::new(1..8), Alignment::right());
    out.push_str(&table.to_string());
    out.push('\n');
    out
}

/// Lines under the table about one step: why it is invalid, that it was interrupted, and its
/// warn/fail findings (info findings stay in the HTML and run.json).
fn notes(result: &CampaignResult, r: &StepRow) -> Vec<String> {
    let mut out = Vec::new();
    if !r.valid {
        out.push(format!(
            "{}: invalid — {}",
            r.name,
            r.invalid_reason.as_deref().unwrap_or("no reason recorded")
        ));
    }
    if r.interrupted {
        out.push(format!(
            "{}: interrupted — counts cover only what ran",
            r.name
        ));
    }
    out.extend(super::shards::notes(r));
    for f in findings_for(result, r) {
        if f.severity >= Severity::Warn {
            out.push(format!(
                "{}: [{}] {}: {}",
                r.name,
                severity_word(f.severity),
                f.check,
                f.message
            ));
        }
    }
    out
}

/// The lowercase word of a severity, as in run.json.
pub fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warn => "warn",
        Severity::Fail => "fail",
    }
}
