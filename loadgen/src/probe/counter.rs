//! The business-counter probe: the site's click total as the service's store reports it
//! (`GET /api/sites/{site}/stats`), and each replica's own counters from its `/metrics`
//! (clicks it stored, HTTP requests it answered, which show how load was spread, and its
//! cgroup's CPU as the service itself exports it: `polymetrie_cgroup_cpu_*`).

use std::time::Duration;

use crate::deployer::CgroupCpu;
use crate::http;

/// Bound of one probe request (the admin port shares CPU with a possibly saturated replica).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Clicks this replica stored, per site.
pub const CLICKS_METRIC: &str = "polymetrie_clicks_total";
/// HTTP requests this replica answered, over all routes and statuses.
pub const REQUESTS_METRIC: &str = "polymetrie_http_requests_total";

/// The site's click total from `{base}/api/sites/{site}/stats` (an `https://` base with `tls`);
/// `None` when unreadable.
pub async fn site_clicks(
    base_url: &str,
    site: &str,
    tls: Option<&loadgen_engine::tls::TlsSpec>,
) -> Option<u64> {
    let url = format!("{base_url}/api/sites/{site}/stats");
    match http::get_with(&url, PROBE_TIMEOUT, tls).await {
        Ok((200, body)) => parse_stats_clicks(&body),
        Ok((status, _)) => {
            tracing::warn!("{url} answered {status}");
            None
        }
        Err(e) => {
            tracing::warn!("{url}: {e}");
            None
        }
    }
}

/// `clicks` from a stats body `{"site":…,"clicks":N,…}`.
pub fn parse_stats_clicks(body: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("clicks")?
        .as_u64()
}

/// CPU time of the service's own cgroup, in seconds.
pub const CGROUP_USAGE_METRIC: &str = "polymetrie_cgroup_cpu_usage_seconds_total";
/// CFS periods of the service's own cgroup.
pub const CGROUP_PERIODS_METRIC: &str = "polymetrie_cgroup_cpu_periods_total";
/// Throttled CFS periods of the service's own cgroup.
pub const CGROUP_THROTTLED_METRIC: &str = "polymetrie_cgroup_cpu_throttled_periods_total";
/// Time the service's own cgroup spent throttled, in seconds.
pub const CGROUP_THROTTLED_TIME_METRIC: &str = "polymetrie_cgroup_cpu_throttled_seconds_total";

/// One replica's own counters, read from its `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaCounters {
    /// `polymetrie_clicks_total{site}`: clicks this replica stored.
    pub clicks: Option<u64>,
    /// Sum of the HTTP requests counter over every label set.
    pub requests: Option<u64>,
    /// Its cgroup's CPU counters as the service exports them; `None` when it does not.
    pub cgroup: Option<CgroupCpu>,
}

/// The `polymetrie_cgroup_cpu_*` counters of a `/metrics` page, in the units the cgroup files
/// have (ns); `None` without the usage counter (the service is in no readable cgroup).
pub fn service_cgroup(text: &str) -> Option<CgroupCpu> {
    let ns = |name| metric_sum(text, name, None).map(|s| (s * 1e9).round().max(0.0) as u64);
    let count = |name| metric_sum(text, name, None).map(as_count);
    Some(CgroupCpu {
        usage_ns: Some(ns(CGROUP_USAGE_METRIC)?),
        nr_periods: count(CGROUP_PERIODS_METRIC),
        nr_throttled: count(CGROUP_THROTTLED_METRIC),
        throttled_ns: ns(CGROUP_THROTTLED_TIME_METRIC),
    })
}

/// Reads `{admin_url}/metrics`; fields that cannot be read are `None`.
pub async fn replica_counters(admin_url: &str, site: &str) -> ReplicaCounters {
    let url = format!("{admin_url}/metrics");
    match http::get(&url, PROBE_TIMEOUT).await {
        Ok((200, text)) => {
            // Counters with labels (prometheus-client families) only appear once incremented:
            // in a complete OpenMetrics page (ending in `# EOF`) an absent sample is a true 0.
            let complete = text.trim_end().ends_with("# EOF");
            let read = |name, label| {
                metric_sum(&text, name, label)
                    .map(as_count)
                    .or(complete.then_some(0))
            };
            ReplicaCounters {
                clicks: read(CLICKS_METRIC, Some(("site", site))),
                requests: read(REQUESTS_METRIC, None),
                cgroup: service_cgroup(&text),
            }
        }
        Ok((status, _)) => {
            tracing::warn!("{url} answered {status}");
            ReplicaCounters::default()
        }
        Err(e) => {
            tracing::warn!("{url}: {e}");
            ReplicaCounters::default()
        }
    }
}

fn as_count(v: f64) -> u64 {
    v.round().max(0.0) as u64
}

/// Sum of every sample of metric `name` (exact name) in Prometheus/OpenMetrics text whose
/// labels include `label`; `None` when there is no such sample.
pub fn metric_sum(text: &str, name: &str, label: Option<(&str, &str)>) -> Option<f64> {
    let labels: Vec<(&str, &str)> = label.into_iter().collect();
    metric_sum_labels(text, name, &labels)
}

/// The distinct sample names of an exposition, in order of first appearance.
pub fn metric_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(s) = parse_sample(line) {
            if !names.iter().any(|n| n == s.name) {
                names.push(s.name.to_string());
            }
        }
    }
    names
}

/// Sum of every sample of metric `name` whose labels include every one of `labels`.
pub fn metric_sum_labels(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(sample) = parse_sample(line) else {
            continue;
        };
        if sample.name != name {
            continue;
        }
        let has = |(k, v): &(&str, &str)| sample.labels.iter().any(|(lk, lv)| lk == k && lv == v);
        if !labels.iter().all(has) {
            continue;
        }
        *sum.get_or_insert(0.0) += sample.value;
    }
    sum
}

struct Sample<'a> {
    name: &'a str,
    labels: Vec<(&'a str, String)>,
    value: f64,
}

/// `name{k="v",…} value [timestamp]`, with `\"`, `\\` and `\n` escapes in label values.
fn parse_sample(line: &str) -> Option<Sample<'_>> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        let end;
        loop {
            // Skip separators, find the key.
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    chars.next();
                } else {
                    break;
                }
            }
            let &(key_start, c) = chars.peek()?;
            if c == '}' {
                end = key_start + 1;
                break;
            }
            let mut key_end = key_start;
            while let Some(&(i, c)) = chars.peek() {
                if c == '=' {
                    key_end = i;
                    break;
                }
                chars.next();
            }
            chars.next(); // '='
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                let (_, c) = chars.next()?;
                match c {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.push((inner[key_start..key_end].trim(), value));
        }
        rest = &inner[end..];
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP polymetrie_clicks Clicks stored.
# TYPE polymetrie_clicks counter
polymetrie_clicks_total{site="a"} 17
polymetrie_clicks_total{site="b,\"x\""} 3
polymetrie_clicks_created{site="a"} 1.7e9
polymetrie_http_requests_total{method="POST",route="/api/clicks",status="204"} 15
polymetrie_http_requests_total{method="GET",route="/metrics",status="200"} 2.0
process_cpu_seconds_total 1.25
# EOF
"#;

    #[test]
    fn sums_samples_by_exact_name_and_label() {
        assert_eq!(
            metric_sum(TEXT, CLICKS_METRIC, Some(("site", "a"))),
            Some(17.0)
        );
        assert_eq!(
            metric_sum(TEXT, CLICKS_METRIC, Some(("site", "b,\"x\""))),
            Some(3.0)
        );
        assert_eq!(metric_sum(TEXT, CLICKS_METRIC, Some(("site", "zz"))), None);
        assert_eq!(metric_sum(TEXT, REQUESTS_METRIC, None), Some(17.0));
        assert_eq!(
            metric_sum(TEXT, "process_cpu_seconds_total", None),
            Some(1.25)
        );
        assert_eq!(metric_sum(TEXT, "absent_total", None), None);
    }

    #[test]
    fn the_services_cgroup_counters_are_read_in_nanoseconds() {
        let text = "polymetrie_cgroup_cpu_usage_seconds_total 1.5\n\
                    polymetrie_cgroup_cpu_periods_total 40\n\
                    polymetrie_cgroup_cpu_throttled_periods_total 10\n\
                    polymetrie_cgroup_cpu_throttled_seconds_total 0.25\n# EOF\n";
        let c = service_cgroup(text).unwrap();
        assert_eq!(c.usage_ns, Some(1_500_000_000));
        assert_eq!(c.nr_periods, Some(40));
        assert_eq!(c.nr_throttled, Some(10));
        assert_eq!(c.throttled_ns, Some(250_000_000));
        assert_eq!(service_cgroup(TEXT), None);
    }

    #[test]
    fn stats_body_gives_clicks() {
        assert_eq!(
            parse_stats_clicks(r#"{"site":"a","clicks":42,"urls":[]}"#),
            Some(42)
        );
        assert_eq!(parse_stats_clicks(r#"{"site":"a"}"#), None);
        assert_eq!(parse_stats_clicks("not json"), None);
    }
}
