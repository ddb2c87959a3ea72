//! Turning Prometheus' answers into numbers: query results (an instant vector taken as it is,
//! a range vector read at the step's edges) and the target list (has every target been scraped
//! since a given time). Pure functions, so recorded JSON fixtures test exactly what runs.

use std::collections::BTreeMap;

use prometheus_http_query::response::{Data, PromqlResult, Targets};
use serde::Deserialize;

/// Labels that name a replica, in order of preference: ours (local), Kubernetes', Prometheus'.
pub const REPLICA_LABELS: [&str; 3] = ["replica", "pod", "instance"];

/// Why a query result gave no number.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReadError {
    #[error("no series matched (is the metric exported and the target labelled?)")]
    NoSeries,
    #[error("the result is not a number ({0})")]
    NotANumber(String),
    #[error("unexpected json from prometheus: {0}")]
    Json(String),
    #[error("prometheus answered {kind}: {message}")]
    Api { kind: String, message: String },
}

/// Where a range vector is read: the window's start, and the evaluation time after its end.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edges {
    pub start_s: f64,
    pub eval_s: f64,
    /// The scrape interval: a series absent at the scrape before its first sample was 0 then.
    pub scrape_interval_s: f64,
}

/// The API's envelope, for parsing recorded bodies the way the client does.
#[derive(Debug, Deserialize)]
struct Envelope<D> {
    status: String,
    data: Option<D>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

fn parse_envelope<D: for<'de> Deserialize<'de>>(body: &str) -> Result<D, ReadError> {
    let env: Envelope<D> =
        serde_json::from_str(body).map_err(|e| ReadError::Json(e.to_string()))?;
    match (env.status.as_str(), env.data) {
        ("success", Some(d)) => Ok(d),
        _ => Err(ReadError::Api {
            kind: env.error_type.unwrap_or_else(|| env.status.clone()),
            message: env.error.unwrap_or_default(),
        }),
    }
}

/// Parses the body of `/api/v1/query`.
pub fn parse_query_body(body: &str) -> Result<PromqlResult, ReadError> {
    parse_envelope(body)
}

/// Parses the body of `/api/v1/targets`.
pub fn parse_targets_body(body: &str) -> Result<Targets, ReadError> {
    parse_envelope(body)
}

/// One number per replica (keyed by [`replica_key`]), from an instant or range vector.
pub fn per_replica(data: &Data, edges: Edges) -> Result<BTreeMap<String, f64>, ReadError> {
    let mut out = BTreeMap::new();
    match data {
        Data::Vector(v) => {
            for s in v {
                *out.entry(replica_key(s.metric())).or_insert(0.0) += s.sample().value();
            }
        }
        Data::Matrix(m) => {
            for s in m {
                let points: Vec<(f64, f64)> = s
                    .samples()
                    .iter()
                    .map(|p| (p.timestamp(), p.value()))
                    .collect();
                *out.entry(replica_key(s.metric())).or_insert(0.0) += edge_increase(&points, edges);
            }
        }
        Data::Scalar(s) => {
            out.insert(String::new(), s.value());
        }
    }
    if out.is_empty() {
        return Err(ReadError::NoSeries);
    }
    if let Some(v) = out.values().find(|v| !v.is_finite()) {
        return Err(ReadError::NotANumber(v.to_string()));
    }
    Ok(out)
}

/// The sum over every series.
pub fn total(data: &Data, edges: Edges) -> Result<f64, ReadError> {
    per_replica(data, edges).map(|m| m.values().sum())
}

/// The replica a series belongs to: the first of [`REPLICA_LABELS`] it carries, else "".
pub fn replica_key(labels: &std::collections::HashMap<String, String>) -> String {
    REPLICA_LABELS
        .iter()
        .find_map(|l| labels.get(*l).cloned())
        .unwrap_or_default()
}

/// A counter's increase from `edges.start_s` to its last sample (at or before the evaluation
/// time, after the load stopped). The value at `start` is interpolated between the samples
/// around it. A series is absent until its first click, and a counter starts at 0: so a series
/// whose first sample comes after `start` was 0 one scrape interval before that sample, and
/// that point takes part in the interpolation (without it, clicks of a warm-up just before
/// `start` would all be counted: measured +4 % on a 7 s step). A drop between samples is a
/// counter reset (a restarted replica): the new value is the increase since the reset, as in
/// PromQL.
pub fn edge_increase(points: &[(f64, f64)], edges: Edges) -> f64 {
    let Some(first) = points.first() else {
        return 0.0;
    };
    let born = (first.0 - edges.scrape_interval_s, 0.0);
    let with_birth: Vec<(f64, f64)> = if first.0 > edges.start_s {
        std::iter::once(born)
            .chain(points.iter().copied())
            .collect()
    } else {
        points.to_vec()
    };
    let before = with_birth.iter().rev().find(|p| p.0 <= edges.start_s);
    let after = with_birth.iter().find(|p| p.0 > edges.start_s);
    let at_start = match (before, after) {
        (None, _) => 0.0,
        (Some(b), None) => b.1,
        (Some(b), Some(a)) if a.1 >= b.1 => b.1 + (a.1 - b.1) * (edges.start_s - b.0) / (a.0 - b.0),
        // A reset right after start: count from the reset.
        (Some(_), Some(_)) => 0.0,
    };
    let mut prev = at_start;
    let mut inc = 0.0;
    for p in points
        .iter()
        .filter(|p| p.0 > edges.start_s && p.0 <= edges.eval_s)
    {
        inc += if p.1 >= prev { p.1 - prev } else { p.1 };
        prev = p.1;
    }
    inc
}

/// How far the active targets (optionally only those labelled `step`) are from "every one has
/// been scraped, and is up, since `since_s`".
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapeStatus {
    pub targets: usize,
    /// Targets not yet done, each as `address: reason`.
    pub pending: Vec<String>,
    /// The longest scrape interval among them, in seconds.
    pub scrape_interval_s: Option<f64>,
}

impl ScrapeStatus {
    /// True when there is at least one target and none is pending.
    pub fn done(&self) -> bool {
        self.targets > 0 && self.pending.is_empty()
    }
}

/// Reads the target list against `since_s` (Unix seconds).
pub fn scrape_status(targets: &Targets, step: Option<&str>, since_s: f64) -> ScrapeStatus {
    let mut status = ScrapeStatus {
        targets: 0,
        pending: Vec::new(),
        scrape_interval_s: None,
    };
    for t in targets.active() {
        if step.is_some_and(|s| t.labels().get("step").map(String::as_str) != Some(s)) {
            continue;
        }
        status.targets += 1;
        let interval = t.scrape_interval().as_seconds_f64();
        status.scrape_interval_s = Some(status.scrape_interval_s.unwrap_or(0.0).max(interval));
        let last = t.last_scrape().unix_timestamp_nanos() as f64 / 1e9;
        let address = t
            .labels()
            .get("instance")
            .cloned()
            .unwrap_or_else(|| t.scrape_url().to_string());
        if last < since_s {
            status.pending.push(format!("{address}: not scraped yet"));
        } else if !t.health().is_up() {
            status
                .pending
                .push(format!("{address}: down ({})", t.last_error()));
        }
    }
    status
}
