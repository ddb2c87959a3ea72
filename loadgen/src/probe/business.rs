//! The business counter of any service, by the plan's [`Counter`]: a metric summed over every
//! replica's Prometheus exposition, a JSON value one GET through the service returns, or a
//! PromQL instant query. Each reading says why it failed ([`CounterError`]), so the run's
//! pre-flight can refuse a counter that cannot be read with one clear line (the metric, the
//! URL, the closest names present), and a step records an unread counter as unknown, never 0.

use loadgen_engine::tls::TlsSpec;

use super::counter::{metric_names, metric_sum_labels, PROBE_TIMEOUT};
use crate::deployer::Deployment;
use crate::http;
use crate::plan::counter::{Counter, MetricSelector};
use crate::plan::template::{Template, Values};

/// Why a counter could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CounterError {
    #[error("GET {url}: {reason}")]
    Get { url: String, reason: String },
    #[error("GET {url} answered {status}")]
    Status { url: String, status: u16 },
    #[error("metric {metric} is not in {url}{}", closest_hint(.closest))]
    NoMetric {
        metric: String,
        url: String,
        closest: Vec<String>,
    },
    #[error("GET {url} did not answer JSON: {head}")]
    NotJson { url: String, head: String },
    #[error("JSON pointer {pointer} finds {found} in the answer of GET {url}, not a count")]
    Pointer {
        pointer: String,
        url: String,
        found: String,
    },
    #[error("promql {query}: {reason}")]
    Promql { query: String, reason: String },
    #[error("no counter is configured")]
    None,
}

fn closest_hint(closest: &[String]) -> String {
    if closest.is_empty() {
        String::new()
    } else {
        format!(" (closest names there: {})", closest.join(", "))
    }
}

/// One replica's value of a metric counter, and the whole counter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// The service's count, when every part of it was read.
    pub total: Option<u64>,
    /// Per replica (a metric counter), in the deployment's replica order.
    pub per_replica: Vec<Option<u64>>,
}

/// Reads `counter` from `deployment`: the total (`Err` with why when it cannot be read), and
/// per replica for a metric counter.
pub async fn read(
    deployment: &Deployment,
    counter: &Counter,
) -> (Result<u64, CounterError>, Vec<Option<u64>>) {
    match counter {
        Counter::Metric { selector, url } => {
            let urls = metric_urls(deployment, url);
            let tasks: Vec<_> = urls
                .into_iter()
                .map(|u| {
                    let selector = selector.clone();
                    let tls = deployment.tls.clone();
                    tokio::spawn(async move { metric(&u, &selector, tls.as_ref()).await })
                })
                .collect();
            let mut per = Vec::new();
            let mut first_err = None;
            for t in tasks {
                match t.await {
                    Ok(Ok(v)) => per.push(Some(v)),
                    Ok(Err(e)) => {
                        first_err.get_or_insert(e);
                        per.push(None);
                    }
                    Err(e) => {
                        first_err.get_or_insert(CounterError::Get {
                            url: String::new(),
                            reason: e.to_string(),
                        });
                        per.push(None);
                    }
                }
            }
            let total = match first_err {
                Some(e) => Err(e),
                None => Ok(per.iter().map(|v| v.unwrap_or(0)).sum()),
            };
            (total, per)
        }
        Counter::Http { path, pointer } => {
            let url = format!("{}{path}", deployment.base_url);
            (
                json(&url, pointer, deployment.tls.as_ref()).await,
                Vec::new(),
            )
        }
        Counter::Promql {
            query,
            url: Some(url),
        } => (promql(url, query).await, Vec::new()),
        Counter::Promql { query, url: None } => (
            Err(CounterError::Promql {
                query: query.clone(),
                reason: "the managed Prometheus is not running".into(),
            }),
            Vec::new(),
        ),
        Counter::Site(_) | Counter::None => (Err(CounterError::None), Vec::new()),
    }
}

/// The sum of an instant query's result vector (or its scalar), rounded.
pub async fn promql(base: &str, query: &str) -> Result<u64, CounterError> {
    let err = |reason: String| CounterError::Promql {
        query: query.to_string(),
        reason,
    };
    let url = format!("{base}/api/v1/query?query={}", percent_encode(query));
    let body = get(&url, None).await.map_err(|e| err(e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|_| err("the answer is not JSON".into()))?;
    let data = &v["data"];
    let number = |x: &serde_json::Value| x[1].as_str().and_then(|s| s.parse::<f64>().ok());
    let total = match data["resultType"].as_str() {
        Some("vector") => {
            let result = data["result"].as_array().cloned().unwrap_or_default();
            if result.is_empty() {
                return Err(err("no series matched".into()));
            }
            result
                .iter()
                .map(|r| number(&r["value"]))
                .sum::<Option<f64>>()
        }
        Some("scalar") => number(&data["result"]),
        other => return Err(err(format!("expected a vector or scalar, got {other:?}"))),
    };
    total
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| t.round() as u64)
        .ok_or_else(|| err("the result is not a count".into()))
}

/// `text` as a URL query value (RFC 3986 unreserved characters kept).
fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The metrics URL of every replica (or pod), placeholders filled in.
pub fn metric_urls(deployment: &Deployment, url: &Template) -> Vec<String> {
    if !deployment.pods.is_empty() {
        return deployment
            .pods
            .iter()
            .map(|p| {
                url.render(&Values {
                    pod_ip: Some(p.ip.clone()),
                    ..Values::default()
                })
            })
            .collect();
    }
    if deployment.replicas.is_empty() {
        return vec![url.render(&Values::default())];
    }
    deployment
        .replicas
        .iter()
        .map(|r| {
            url.render(&Values {
                port: r.port(),
                metrics_port: r.metrics_port,
                replica: Some(r.index),
                ..Values::default()
            })
        })
        .collect()
}

/// GETs `url`; an `https://` one with the deployment's TLS settings (the run's CA in a `tls =
/// true` step, the target's keys for an https target) or else the system's roots.
async fn get(url: &str, tls: Option<&TlsSpec>) -> Result<String, CounterError> {
    match http::get_with(url, PROBE_TIMEOUT, tls).await {
        Ok((200, body)) => Ok(body),
        Ok((status, _)) => Err(CounterError::Status {
            url: url.to_string(),
            status,
        }),
        Err(e) => Err(CounterError::Get {
            url: url.to_string(),
            reason: e.to_string(),
        }),
    }
}

/// The sum of the selector's samples on one exposition page.
pub async fn metric(
    url: &str,
    selector: &MetricSelector,
    tls: Option<&TlsSpec>,
) -> Result<u64, CounterError> {
    let text = get(url, tls).await?;
    let labels: Vec<(&str, &str)> = selector
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match metric_sum_labels(&text, &selector.name, &labels) {
        Some(v) => Ok(v.round().max(0.0) as u64),
        // A labelled series appears with its first increment: a family that is declared (or
        // has other series) but none with these labels yet has counted 0 of them.
        None if declared(&text, &selector.name) => Ok(0),
        None => Err(CounterError::NoMetric {
            metric: selector.to_string(),
            url: url.to_string(),
            closest: closest(&selector.name, &metric_names(&text)),
        }),
    }
}

/// True when `name` is a sample name on the page, or the family it belongs to is declared
/// (`# TYPE`/`# HELP`, where a counter's family drops the `_total` suffix).
fn declared(text: &str, name: &str) -> bool {
    let family = name.strip_suffix("_total").unwrap_or(name);
    metric_names(text).iter().any(|n| n == name)
        || text.lines().any(|l| {
            let mut w = l.split_whitespace();
            matches!(w.next(), Some("#"))
                && matches!(w.next(), Some("TYPE" | "HELP"))
                && w.next().is_some_and(|f| f == name || f == family)
        })
}

/// Up to three names of `present` most like `wanted` (longest shared prefix, then shortest).
fn closest(wanted: &str, present: &[String]) -> Vec<String> {
    let shared = |n: &str| {
        wanted
            .chars()
            .zip(n.chars())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let mut scored: Vec<(usize, &String)> = present
        .iter()
        .map(|n| (shared(n), n))
        .filter(|(s, n)| *s >= 3 || n.contains(wanted) || wanted.contains(n.as_str()))
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.len().cmp(&b.1.len())));
    scored.into_iter().take(3).map(|(_, n)| n.clone()).collect()
}

/// A count at `pointer` in the JSON answer of `url` (a float is rounded).
pub async fn json(url: &str, pointer: &str, tls: Option<&TlsSpec>) -> Result<u64, CounterError> {
    let body = get(url, tls).await?;
    let value: serde_json::Value =
        serde_json::from_str(&body).map_err(|_| CounterError::NotJson {
            url: url.to_string(),
            head: body.chars().take(80).collect(),
        })?;
    let found = value.pointer(pointer);
    let count = found.and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.round() as u64))
    });
    count.ok_or_else(|| CounterError::Pointer {
        pointer: pointer.to_string(),
        url: url.to_string(),
        found: found.map_or("nothing".to_string(), |v| {
            let s = v.to_string();
            s.chars().take(60).collect()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_names_share_the_longest_prefix() {
        let present = vec![
            "prometheus_http_requests_total".to_string(),
            "prometheus_http_request_duration_seconds_bucket".to_string(),
            "go_goroutines".to_string(),
        ];
        let c = closest("prometheus_http_request_total", &present);
        assert_eq!(c.len(), 2);
        assert!(
            c.iter().all(|n| n.starts_with("prometheus_http_request")),
            "{c:?}"
        );
        assert!(closest("zzz", &present).is_empty());
    }

    #[test]
    fn a_query_is_percent_encoded() {
        assert_eq!(
            percent_encode(r#"sum(x{a="b c"})"#),
            "sum%28x%7Ba%3D%22b%20c%22%7D%29"
        );
    }

    #[test]
    fn a_declared_family_without_the_labelled_series_yet_counts_zero() {
        let page = "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\"} 4\n";
        assert!(declared(page, "x_total"));
        let family_only = "# HELP clicks Clicks.\n# TYPE clicks counter\n";
        assert!(declared(family_only, "clicks_total"));
        assert!(!declared(family_only, "other_total"));
    }

    #[test]
    fn an_error_names_the_metric_the_url_and_the_closest_names() {
        let e = CounterError::NoMetric {
            metric: "a_total".into(),
            url: "http://127.0.0.1:1/metrics".into(),
            closest: vec!["a_totals".into()],
        };
        assert_eq!(
            e.to_string(),
            "metric a_total is not in http://127.0.0.1:1/metrics (closest names there: a_totals)"
        );
    }
}
