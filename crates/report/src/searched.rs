//! The searched capacities as every renderer shows them: one line per configuration (its
//! label and sentence), the derived-figure cells of the table, CSV and HTML — formatted once
//! here, like [`super::row`] does for steps, so the outputs agree — and the probes' extra
//! `steps.csv` cells.

use loadgen_judge::check;
use loadgen_model::capacity::Capacity;
use loadgen_model::result::CampaignResult;

use super::row::{configuration_label, num, StepRow};

/// Headers of the derived-figures table.
pub const HEADERS: [&str; 9] = [
    "configuration",
    "capacity (req/s)",
    "fails at (req/s)",
    "spread (req/s)",
    "per replica (req/s)",
    "per core (req/s)",
    "scaling efficiency",
    "CPU-s per 1k clicks",
    "probes",
];

/// "1 replica, 0.50 cores, memory".
pub fn label(c: &Capacity) -> String {
    let t = &c.topology;
    configuration_label(Some(t.replicas), t.cpu_limit_cores, Some(&t.store))
}

/// "ci: 1 replica, 0.50 cores, memory: capacity 87 req/s (…)".
pub fn line(c: &Capacity) -> String {
    format!("{}: {}: {}", c.campaign, label(c), c.sentence())
}

/// The cells of one configuration, in [`HEADERS`] order (`None`: not measured).
pub fn cells(c: &Capacity) -> Vec<Option<String>> {
    let rate = |v: Option<f64>| v.map(|v| num(v, 0));
    vec![
        Some(format!("{}/{} ({})", c.campaign, c.configuration, label(c))),
        rate(c.capacity_rps),
        rate(c.failed_rps),
        rate(c.spread_rps),
        c.capacity_per_replica_rps.map(|v| num(v, 1)),
        c.capacity_per_core_rps.map(|v| num(v, 1)),
        c.scaling_efficiency
            .map(|v| format!("{} %", num(v * 100.0, 0))),
        c.cpu_s_per_1k_clicks.map(|v| num(v, 2)),
        Some(format!("{} ({})", c.probes, c.ending.as_str())),
    ]
}

/// The capacities of one campaign.
pub fn of_campaign<'a>(r: &'a CampaignResult, campaign: Option<&str>) -> Vec<&'a Capacity> {
    r.capacities
        .iter()
        .filter(|c| Some(c.campaign.as_str()) == campaign)
        .collect()
}

/// Extra `steps.csv` columns of a run with a capacity search, after the usual ones.
pub const CSV_COLUMNS: [(&str, &str); 9] = [
    (
        "search_configuration",
        "the configuration key a probe belongs to (e.g. `r1-cpu0.5`); empty for a listed step",
    ),
    (
        "search_probe",
        "why the probe ran: `grow`, `bisect` or `confirm`",
    ),
    ("slo_met", "`true` when the probe met its search's SLO"),
    (
        "cpu_s_per_1k_clicks",
        "CPU-seconds the replicas used per 1,000 counted clicks",
    ),
    (
        "capacity_rps",
        "the configuration's capacity: the highest rate that passed by majority of its probes, below the lowest that did not",
    ),
    (
        "capacity_failed_rps",
        "the lowest rate of the configuration that failed",
    ),
    ("capacity_per_replica_rps", "capacity / replicas"),
    ("capacity_per_core_rps", "capacity / (replicas × CPU limit)"),
    (
        "scaling_efficiency",
        "capacity / (replicas × the capacity of one replica with the same limit and store)",
    ),
];

/// The extra cells of one row, in [`CSV_COLUMNS`] order (empty: not measured or not a probe).
pub fn csv_cells(r: &CampaignResult, row: &StepRow) -> Vec<String> {
    let e = |c: Option<String>| c.unwrap_or_default();
    let cpu = r
        .steps
        .get(row.index - 1)
        .and_then(|s| s.cpu_s_per_1k_clicks());
    let id = row.id();
    let found = r.searches.iter().find_map(|s| {
        let p = s.probes.iter().find(|p| p.step == id)?;
        Some((s, p))
    });
    let Some((search, probe)) = found else {
        let mut out = vec![String::new(); CSV_COLUMNS.len()];
        out[3] = e(cpu.map(|v| num(v, 2)));
        return out;
    };
    let met = r
        .steps
        .get(row.index - 1)
        .map(|s| check::slo::judge(s, &search.slo).passed);
    let cap = r
        .capacities
        .iter()
        .find(|c| c.campaign == search.campaign && c.configuration == probe.configuration);
    let rate = |v: Option<f64>| e(v.map(|v| num(v, 0)));
    vec![
        probe.configuration.clone(),
        probe.kind.as_str().to_string(),
        e(met.map(|m| m.to_string())),
        e(cpu.map(|v| num(v, 2))),
        rate(cap.and_then(|c| c.capacity_rps)),
        rate(cap.and_then(|c| c.failed_rps)),
        e(cap
            .and_then(|c| c.capacity_per_replica_rps)
            .map(|v| num(v, 1))),
        e(cap.and_then(|c| c.capacity_per_core_rps).map(|v| num(v, 1))),
        e(cap.and_then(|c| c.scaling_efficiency).map(|v| num(v, 3))),
    ]
}
