//! `steps.csv`: one row per step with the same numbers as the terminal table and the HTML (all
//! taken from [`StepRow`]). Units are in the column names; an empty cell means "not measured",
//! never 0. Per-replica lists are joined with `;` in replica order. [`COLUMNS`] documents every
//! column (and `reports/README.md` repeats it).

use std::path::Path;

use loadgen_model::result::CampaignResult;

use super::row::{rows, StepRow, CSV_LIST};
use super::table::severity_word;
use super::ReportError;

/// Every column of `steps.csv`, in order, with what it holds.
pub const COLUMNS: [(&str, &str); 36] = [
    ("index", "1-based position of the step in run.json"),
    ("campaign", "campaign name (empty outside a campaign)"),
    ("step", "step name"),
    ("rate_rps", "offered (scheduled) rate, requests per second"),
    (
        "duration_s",
        "scheduled duration of the measured window, seconds",
    ),
    ("replicas", "replicas of the service"),
    (
        "cpu_limit_cores",
        "CPU limit per replica in cores; `none` = no limit",
    ),
    ("store", "counter store: memory, redis or external"),
    (
        "intended_requests",
        "requests the schedule called for (TD4 \"requests\")",
    ),
    ("sent_requests", "requests actually sent"),
    ("ok_requests", "2xx answers"),
    (
        "failed_requests",
        "sent requests without a 2xx (status, timeout, connection errors)",
    ),
    (
        "dropped_requests",
        "due but never sent (generator in-flight cap reached)",
    ),
    (
        "achieved_rps",
        "requests sent per second of the scheduled duration",
    ),
    (
        "counter_delta",
        "increase of the service's own click counter over the step",
    ),
    (
        "counted_pct",
        "counter_delta / intended_requests × 100 (TD4 \"success\")",
    ),
    ("client_ok_pct", "ok_requests / intended_requests × 100"),
    (
        "cpu_cores_used",
        "CPU used by all replicas together, cores (cgroup)",
    ),
    (
        "cpu_cores_per_replica",
        "CPU used per replica, cores, `;`-separated",
    ),
    (
        "throttled_pct",
        "throttled CFS periods / all periods × 100, all replicas",
    ),
    (
        "throttled_pct_per_replica",
        "throttled periods share per replica, `;`-separated",
    ),
    (
        "requests_per_replica",
        "HTTP requests answered per replica, `;`-separated",
    ),
    (
        "clicks_per_replica",
        "clicks stored per replica, `;`-separated",
    ),
    (
        "node_cores_used",
        "busy cores of the whole machine over the step (/proc/stat)",
    ),
    (
        "latency_p50_ms",
        "median latency from the due time, milliseconds",
    ),
    (
        "latency_p99_ms",
        "99th percentile latency from the due time, milliseconds",
    ),
    (
        "latency_max_ms",
        "maximum latency from the due time, milliseconds",
    ),
    (
        "schedule_lag_p99_ms",
        "99th percentile of send time minus due time, milliseconds",
    ),
    ("generator_cores_used", "CPU used by loadgen itself, cores"),
    (
        "prometheus_counter_increase",
        "counter increase over the step according to Prometheus",
    ),
    (
        "prometheus_cpu_cores_used",
        "CPU used by the replicas according to Prometheus, cores",
    ),
    (
        "prometheus_cpu_cores_per_replica",
        "CPU used per replica (Prometheus instance) according to Prometheus, cores, `;`-separated",
    ),
    (
        "prometheus_throttled_pct",
        "throttled share according to Prometheus, %",
    ),
    (
        "valid",
        "`true` when the generator kept its schedule and the step can be trusted",
    ),
    ("interrupted", "`true` when the step was cut short"),
    (
        "invalid_reason_and_findings",
        "why the step is invalid, then `severity:check` of its findings, `;`-separated",
    ),
];

/// The header of a run's CSV: [`COLUMNS`], then, in a run with a capacity search,
/// [`super::searched::CSV_COLUMNS`].
pub fn header(result: &CampaignResult) -> Vec<&'static str> {
    columns(result).into_iter().map(|(name, _)| name).collect()
}

/// The columns of a run's CSV with what each holds, in [`header`] order.
pub fn columns(result: &CampaignResult) -> Vec<(&'static str, &'static str)> {
    let mut out = COLUMNS.to_vec();
    if !result.searches.is_empty() {
        out.extend(super::searched::CSV_COLUMNS);
    }
    out
}

/// The cells of one row, in [`header`] order.
pub fn record(result: &CampaignResult, r: &StepRow) -> Vec<String> {
    let mut cells = base_record(result, r);
    if !result.searches.is_empty() {
        cells.extend(super::searched::csv_cells(result, r));
    }
    cells
}

/// The cells of one row, in [`COLUMNS`] order.
fn base_record(result: &CampaignResult, r: &StepRow) -> Vec<String> {
    let e = |c: Option<String>| c.unwrap_or_default();
    let mut notes: Vec<String> = r.invalid_reason.iter().cloned().collect();
    notes.extend(
        super::row::findings_for(result, r)
            .iter()
            .map(|f| format!("{}:{}", severity_word(f.severity), f.check)),
    );
    vec![
        r.index.to_string(),
        r.campaign.clone().unwrap_or_default(),
        r.name.clone(),
        r.rate_cell(),
        super::row::num(r.duration_s, 0),
        e(r.replicas_cell()),
        e(r.cpu_limit_cell()),
        r.store.clone().unwrap_or_default(),
        r.intended.to_string(),
        r.sent.to_string(),
        r.ok.to_string(),
        r.failed.to_string(),
        r.dropped.to_string(),
        e(r.achieved_cell()),
        e(r.counter_delta_cell()),
        e(r.counted_cell()),
        e(r.client_ok_cell()),
        e(r.cpu_total_cell()),
        e(r.cpu_per_replica_cell(CSV_LIST)),
        e(r.throttled_total_cell()),
        e(r.throttled_per_replica_cell(CSV_LIST)),
        e(r.requests_per_replica_cell(CSV_LIST)),
        e(r.clicks_per_replica_cell(CSV_LIST)),
        e(r.node_cores_cell()),
        e(r.p50_cell()),
        e(r.p99_cell()),
        e(r.max_cell()),
        e(r.lag_p99_cell()),
        e(r.generator_cores_cell()),
        e(r.prom_counter_cell()),
        e(r.prom_cpu_cell()),
        e(r.prom_cpu_per_replica_cell(CSV_LIST)),
        e(r.prom_throttled_cell()),
        r.valid.to_string(),
        r.interrupted.to_string(),
        notes.join(";"),
    ]
}

/// The whole CSV as a string (header + one row per step).
pub fn render(result: &CampaignResult) -> Result<String, ReportError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header(result))?;
    for r in rows(result) {
        w.write_record(record(result, &r))?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ReportError::Csv(e.into_error().into()))?;
    Ok(String::from_utf8(bytes).expect("csv of utf-8 strings is utf-8"))
}

/// Writes `steps.csv` to `path`.
pub fn write(result: &CampaignResult, path: &Path) -> Result<(), ReportError> {
    let text = render(result)?;
    super::write_file(path, text.as_bytes())
}
