//! The step row: every number a report shows about one step, computed and formatted once from a
//! [`StepResult`], so the terminal table, `steps.csv` and `report.html` can never disagree.
//!
//! Cells are kept as `Option<String>` of the bare number (no unit): `None` means "not measured",
//! which the table prints as "—" and the CSV as an empty cell — never as 0.

use loadgen_model::result::{CampaignResult, CheckName, Finding, StepResult};
use loadgen_model::step_id::StepId;

/// What the table and HTML print for a value that was not measured.
pub const MISSING: &str = "—";

/// How a per-replica list is joined into one cell, and what an unread element prints as.
#[derive(Debug, Clone, Copy)]
pub struct ListStyle {
    pub sep: &'static str,
    pub missing: &'static str,
}

/// Lists in the terminal table and the HTML: "0.98 / 0.61".
pub const TABLE_LIST: ListStyle = ListStyle {
    sep: " / ",
    missing: MISSING,
};

/// Lists in `steps.csv`: "0.98;0.61", an unread element is empty ("0.98;").
pub const CSV_LIST: ListStyle = ListStyle {
    sep: ";",
    missing: "",
};

/// One step as all renderers show it.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    /// 1-based position of the step in `run.json`, used as the x value of per-step charts.
    pub index: usize,
    pub campaign: Option<String>,
    pub name: String,
    /// Offered (scheduled) rate.
    pub rate_rps: f64,
    pub duration_s: f64,
    pub intended: u64,
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    pub replicas: Option<u32>,
    /// `None` with a known topology means "no limit"; see [`StepRow::cpu_limit_cell`].
    pub cpu_limit_cores: Option<f64>,
    pub store: Option<String>,
    /// The replicas served HTTPS with the run's certificate (`tls = true`).
    pub tls: bool,
    pub counter_delta: Option<i64>,
    /// counter delta / intended, as a percentage.
    pub counted_pct: Option<f64>,
    /// ok / intended, as a percentage.
    pub client_ok_pct: Option<f64>,
    pub achieved_rps: Option<f64>,
    pub cpu_cores_total: Option<f64>,
    pub cpu_cores_per_replica: Vec<Option<f64>>,
    pub throttled_pct: Option<f64>,
    pub throttled_pct_per_replica: Vec<Option<f64>>,
    pub requests_per_replica: Vec<Option<u64>>,
    pub clicks_per_replica: Vec<Option<u64>>,
    pub node_cores_used: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub schedule_lag_p99_ms: Option<f64>,
    pub generator_cores: Option<f64>,
    pub prom_counter_increase: Option<f64>,
    pub prom_cpu_cores: Option<f64>,
    /// Per Prometheus `instance`, in run.json order.
    pub prom_cpu_cores_per_replica: Vec<Option<f64>>,
    pub prom_throttled_pct: Option<f64>,
    pub valid: bool,
    pub invalid_reason: Option<String>,
    pub interrupted: bool,
    /// A process of the target exited during the step.
    pub target_failed: bool,
    /// How it failed, from the step's `replica_exited` / `store_exited` findings.
    pub target_failure: Option<String>,
    /// The step's shards, when it ran on several generators.
    pub sharding: Option<loadgen_model::shard::Sharding>,
}

impl StepRow {
    /// Builds the row of the `index`-th (1-based) step.
    pub fn new(index: usize, s: &StepResult) -> Self {
        let cpu = s.cpu.as_ref();
        let per_replica = cpu.map(|c| c.per_replica.as_slice()).unwrap_or(&[]);
        let prom = s.prometheus.as_ref();
        Self {
            index,
            campaign: s.campaign.clone(),
            name: s.name.clone(),
            rate_rps: s.rate_rps,
            duration_s: s.duration_s,
            intended: s.intended,
            sent: s.sent,
            ok: s.ok,
            failed: s.failed,
            dropped: s.dropped,
            replicas: s.topology.as_ref().map(|t| t.replicas),
            cpu_limit_cores: s.topology.as_ref().and_then(|t| t.cpu_limit_cores),
            store: s.topology.as_ref().map(|t| t.store.clone()),
            tls: s.topology.as_ref().is_some_and(|t| t.tls),
            counter_delta: s.counter.as_ref().and_then(|c| c.delta),
            counted_pct: s.counted_ratio.map(pct),
            client_ok_pct: s.success_ratio.map(pct),
            achieved_rps: s.achieved_rps,
            cpu_cores_total: cpu.and_then(|c| c.cores_used),
            cpu_cores_per_replica: per_replica.iter().map(|r| r.cores_used).collect(),
            throttled_pct: cpu.and_then(|c| c.throttled_ratio).map(pct),
            throttled_pct_per_replica: per_replica
                .iter()
                .map(|r| r.throttled_ratio.map(pct))
                .collect(),
            requests_per_replica: per_replica.iter().map(|r| r.requests).collect(),
            clicks_per_replica: s
                .counter
                .as_ref()
                .map(|c| c.per_replica.clone())
                .unwrap_or_default(),
            node_cores_used: cpu.and_then(|c| c.node_cores_used),
            p50_ms: s.latency_ms.p50,
            p99_ms: s.latency_ms.p99,
            max_ms: s.latency_ms.max,
            schedule_lag_p99_ms: s.schedule_lag_ms.p99,
            generator_cores: s.generator.cpu_cores_used,
            prom_counter_increase: prom.and_then(|p| p.counter_increase),
            prom_cpu_cores: prom.and_then(|p| p.cpu_cores_used),
            prom_cpu_cores_per_replica: prom
                .map(|p| p.per_replica.iter().map(|r| r.cpu_cores_used).collect())
                .unwrap_or_default(),
            prom_throttled_pct: prom.and_then(|p| p.throttled_ratio).map(pct),
            valid: s.valid,
            invalid_reason: s.invalid_reason.clone(),
            interrupted: s.interrupted,
            target_failed: s.target_failed,
            target_failure: target_failure(s),
            sharding: s.sharding.clone(),
        }
    }

    /// `campaign/name`, or the bare name for a step outside any campaign.
    pub fn id(&self) -> StepId {
        StepId::new(self.campaign.as_deref(), &self.name)
    }

    /// `campaign/name`, or the bare name.
    pub fn key(&self) -> String {
        self.id().to_string()
    }

    /// The configuration the step ran on, e.g. "2 replicas, 1 core, memory".
    pub fn configuration_label(&self) -> String {
        let label = configuration_label(self.replicas, self.cpu_limit_cores, self.store.as_deref());
        if self.tls {
            label + ", TLS"
        } else {
            label
        }
    }

    pub fn rate_cell(&self) -> String {
        num(self.rate_rps, 0)
    }
    pub fn replicas_cell(&self) -> Option<String> {
        self.replicas.map(|r| r.to_string())
    }
    /// "none" when the topology is known and has no limit; unknown topology is unmeasured.
    pub fn cpu_limit_cell(&self) -> Option<String> {
        match (self.replicas, self.cpu_limit_cores) {
            (_, Some(c)) => Some(num(c, 2)),
            (Some(_), None) => Some("none".into()),
            (None, None) => None,
        }
    }
    pub fn counted_cell(&self) -> Option<String> {
        self.counted_pct.map(|v| num(v, 1))
    }
    pub fn client_ok_cell(&self) -> Option<String> {
        self.client_ok_pct.map(|v| num(v, 1))
    }
    pub fn achieved_cell(&self) -> Option<String> {
        self.achieved_rps.map(|v| num(v, 1))
    }
    pub fn cpu_total_cell(&self) -> Option<String> {
        self.cpu_cores_total.map(|v| num(v, 2))
    }
    /// Cores used per replica joined with `sep` (e.g. "0.98 / 0.61"); `None` when no replica
    /// CPU was read at all. A single unread replica inside the list prints as [`MISSING`].
    pub fn cpu_per_replica_cell(&self, style: ListStyle) -> Option<String> {
        list_cell(&self.cpu_cores_per_replica, style, |v| num(v, 2))
    }
    /// Throttled share per replica when known, else the step's aggregate.
    pub fn throttled_cell(&self, style: ListStyle) -> Option<String> {
        self.throttled_per_replica_cell(style)
            .or_else(|| self.throttled_total_cell())
    }
    /// Throttled share per replica only (no fallback to the aggregate).
    pub fn throttled_per_replica_cell(&self, style: ListStyle) -> Option<String> {
        list_cell(&self.throttled_pct_per_replica, style, |v| num(v, 1))
    }
    pub fn throttled_total_cell(&self) -> Option<String> {
        self.throttled_pct.map(|v| num(v, 1))
    }
    pub fn requests_per_replica_cell(&self, style: ListStyle) -> Option<String> {
        list_cell(&self.requests_per_replica, style, |v| v.to_string())
    }
    pub fn clicks_per_replica_cell(&self, style: ListStyle) -> Option<String> {
        list_cell(&self.clicks_per_replica, style, |v| v.to_string())
    }
    pub fn node_cores_cell(&self) -> Option<String> {
        self.node_cores_used.map(|v| num(v, 2))
    }
    pub fn p50_cell(&self) -> Option<String> {
        self.p50_ms.map(ms)
    }
    pub fn p99_cell(&self) -> Option<String> {
        self.p99_ms.map(ms)
    }
    pub fn max_cell(&self) -> Option<String> {
        self.max_ms.map(ms)
    }
    pub fn lag_p99_cell(&self) -> Option<String> {
        self.schedule_lag_p99_ms.map(ms)
    }
    pub fn generator_cores_cell(&self) -> Option<String> {
        self.generator_cores.map(|v| num(v, 2))
    }
    pub fn counter_delta_cell(&self) -> Option<String> {
        self.counter_delta.map(|v| v.to_string())
    }
    pub fn prom_counter_cell(&self) -> Option<String> {
        self.prom_counter_increase.map(|v| num(v, 0))
    }
    pub fn prom_cpu_cell(&self) -> Option<String> {
        self.prom_cpu_cores.map(|v| num(v, 2))
    }
    pub fn prom_cpu_per_replica_cell(&self, style: ListStyle) -> Option<String> {
        list_cell(&self.prom_cpu_cores_per_replica, style, |v| num(v, 2))
    }
    pub fn prom_throttled_cell(&self) -> Option<String> {
        self.prom_throttled_pct.map(|v| num(v, 1))
    }
    /// "yes", "NO" (invalid), with "interrupted" appended when the step was cut short and
    /// "target failed" when a process of the target exited during it.
    pub fn valid_cell(&self) -> String {
        let mut cell = match (self.valid, self.interrupted) {
            (true, false) => "yes".to_string(),
            (true, true) => "yes, interrupted".into(),
            (false, false) => "NO".into(),
            (false, true) => "NO, interrupted".into(),
        };
        if self.target_failed {
            cell.push_str(", target failed");
        }
        cell
    }
}

/// The messages of a step's target-exit findings, joined; `None` when its target held.
fn target_failure(s: &StepResult) -> Option<String> {
    let exits: Vec<&str> = s
        .checks
        .iter()
        .filter(|f| matches!(f.check, CheckName::ReplicaExited | CheckName::StoreExited))
        .map(|f| {
            f.message
                .split(": the target crashed")
                .next()
                .unwrap_or(&f.message)
        })
        .collect();
    (!exits.is_empty()).then(|| exits.join("; "))
}

/// Rows of every step of the run, in `run.json` order.
pub fn rows(result: &CampaignResult) -> Vec<StepRow> {
    result
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| StepRow::new(i + 1, s))
        .collect()
}

/// The campaigns of the run in display order: those listed in `result.campaigns` first, then any
/// other campaign name met in the steps (by first appearance), then `None` for steps outside any
/// campaign. Each comes with its rows.
pub fn by_campaign(result: &CampaignResult) -> Vec<(Option<String>, Vec<StepRow>)> {
    let all = rows(result);
    let mut order: Vec<Option<String>> = result
        .campaigns
        .iter()
        .map(|c| Some(c.name.clone()))
        .collect();
    for r in &all {
        if !order.contains(&r.campaign) {
            order.push(r.campaign.clone());
        }
    }
    order
        .into_iter()
        .map(|c| {
            let rs: Vec<StepRow> = all.iter().filter(|r| r.campaign == c).cloned().collect();
            (c, rs)
        })
        .filter(|(_, rs)| !rs.is_empty())
        .collect()
}

/// True when `finding` concerns the step (see [`StepId::concerns`]).
pub fn concerns(finding: &Finding, row: &StepRow) -> bool {
    finding.step.as_ref().is_some_and(|s| s.concerns(&row.id()))
}

/// Every finding about one step: its own checks, then run-level findings naming it.
pub fn findings_for<'a>(result: &'a CampaignResult, row: &StepRow) -> Vec<&'a Finding> {
    let own = result
        .steps
        .get(row.index - 1)
        .map(|s| s.checks.iter().collect::<Vec<_>>())
        .unwrap_or_default();
    let mut out = own;
    // The runner may copy a step's checks into the run's findings too; show each once.
    for f in result.findings.iter().filter(|f| concerns(f, row)) {
        if !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

/// Run-level findings that concern no step of the run.
pub fn unattached_findings(result: &CampaignResult) -> Vec<&Finding> {
    let all = rows(result);
    result
        .findings
        .iter()
        .filter(|f| !all.iter().any(|r| concerns(f, r)))
        .collect()
}

/// "1 replica, 1 core, memory"; unknown parts say so.
pub fn configuration_label(replicas: Option<u32>, cpu: Option<f64>, store: Option<&str>) -> String {
    let Some(n) = replicas else {
        return "unknown topology".into();
    };
    let reps = if n == 1 {
        "1 replica".to_string()
    } else {
        format!("{n} replicas")
    };
    let limit = match cpu {
        Some(1.0) => "1 core".to_string(),
        Some(c) => format!("{} cores", num(c, 2)),
        None => "no CPU limit".into(),
    };
    match store {
        Some(s) => format!("{reps}, {limit}, {s}"),
        None => format!("{reps}, {limit}"),
    }
}

fn pct(ratio: f64) -> f64 {
    ratio * 100.0
}

fn ms(v: f64) -> String {
    if v >= 100.0 {
        num(v, 0)
    } else if v >= 10.0 {
        num(v, 1)
    } else {
        num(v, 2)
    }
}

/// Fixed-decimals formatting, trailing zeros removed only for whole numbers when `decimals`
/// is 0; `-0` is printed as `0` so output stays byte-stable.
pub fn num(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
        s[1..].to_string()
    } else {
        s
    }
}

fn list_cell<T: Copy>(
    values: &[Option<T>],
    style: ListStyle,
    fmt: impl Fn(T) -> String,
) -> Option<String> {
    if values.iter().all(Option::is_none) {
        return None;
    }
    Some(
        values
            .iter()
            .map(|v| v.map(&fmt).unwrap_or_else(|| style.missing.to_string()))
            .collect::<Vec<_>>()
            .join(style.sep),
    )
}
