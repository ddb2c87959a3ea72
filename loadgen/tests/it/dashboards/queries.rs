//! The queries of the Grafana dashboards in `k8s/dashboards/`, as Grafana would send them: every
//! panel target and Prometheus annotation read from the JSON files (the same files the
//! ConfigMaps carry), Grafana's variables substituted, and each answer judged: at least one
//! series with a finite sample, and values that fit the unit the panel states. Pure: the
//! answers come from [`super::prometheus`].

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// The dashboards and the Prometheus job whose metrics each one reads.
pub const DASHBOARDS: [(&str, &str); 2] = [
    ("loadgen-campaign.json", "loadgen"),
    ("polymetrie.json", "polymetrie"),
];

/// One query of a dashboard: a panel target or an annotation.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub dashboard: String,
    /// The panel's title, or `annotation <name>`.
    pub panel: String,
    pub ref_id: String,
    /// As written in the JSON file.
    pub expr: String,
    /// `fieldConfig.defaults.unit`; `None` for an annotation.
    pub unit: Option<String>,
}

impl Query {
    /// Names the query in a failure: dashboard, panel, refId and the query itself.
    pub fn name(&self) -> String {
        format!(
            "{} / {:?} / {}: {}",
            self.dashboard, self.panel, self.ref_id, self.expr
        )
    }
}

/// The values Grafana would put in for its variables.
#[derive(Debug, Clone, PartialEq)]
pub struct Variables {
    pub job: String,
    /// `$__rate_interval`: Grafana's max(interval + scrape interval, 4 × scrape interval).
    pub rate_interval: Duration,
    /// `$__interval`: the step of the range query.
    pub interval: Duration,
    /// `$__range`: the whole time range.
    pub range: Duration,
}

/// `k8s/dashboards/NAME`.
pub fn path(name: &str) -> PathBuf {
    crate::common::repo_dir().join("k8s/dashboards").join(name)
}

/// The dashboard `name`, parsed.
pub fn load(name: &str) -> Value {
    let p = path(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every panel target (rows' panels included) and every Prometheus annotation of `doc`.
pub fn queries(name: &str, doc: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = Vec::new();
    for p in doc["panels"].as_array().into_iter().flatten() {
        panels.push(p);
        panels.extend(p["panels"].as_array().into_iter().flatten());
    }
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                dashboard: name.to_string(),
                panel: p["title"].as_str().unwrap_or("?").to_string(),
                ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                expr: t["expr"].as_str().unwrap_or_default().to_string(),
                unit: p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .map(str::to_string),
            });
        }
    }
    for a in doc["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = a["target"]["expr"].as_str() {
            out.push(Query {
                dashboard: name.to_string(),
                panel: format!("annotation {}", a["name"].as_str().unwrap_or("?")),
                ref_id: a["target"]["refId"].as_str().unwrap_or("?").to_string(),
                expr: expr.to_string(),
                unit: None,
            });
        }
    }
    out
}

/// The `label_values(METRIC, LABEL)` queries of the dashboard's query variables, as
/// `(variable, METRIC-with-selector, LABEL)`.
pub fn variable_queries(doc: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for v in doc["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"].as_str().unwrap_or_default();
        let inner = q
            .strip_prefix("label_values(")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("not a label_values() query: {q}"));
        let (metric, label) = inner.rsplit_once(',').expect("label_values(metric, label)");
        out.push((
            v["name"].as_str().unwrap_or("?").to_string(),
            metric.trim().to_string(),
            label.trim().to_string(),
        ));
    }
    out
}

/// A duration as PromQL writes it, in whole milliseconds.
fn promql(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// `expr` with Grafana's variables put in: all namespaces (the variable's All value `.*`), the
/// dashboard's job, and the interval variables.
pub fn substitute(expr: &str, v: &Variables) -> String {
    expr.replace("$namespace", ".*")
        .replace("$job", &v.job)
        .replace("$__rate_interval", &promql(v.rate_interval))
        .replace("$__interval", &promql(v.interval))
        .replace("$__range", &promql(v.range))
}

/// One series of a range query's answer: its labels and its samples' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: String,
    pub values: Vec<f64>,
}

/// Why the answer to `q` does not show what its panel says, or `None`. `cpus` bounds a rate of
/// CPU seconds (cores).
pub fn judge(q: &Query, series: &[Series], cpus: f64) -> Option<String> {
    let finite: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    if finite.is_empty() {
        return Some(format!(
            "no data: {} series, none with a finite sample",
            series.len()
        ));
    }
    let (lo, hi) = finite
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo < 0.0 {
        return Some(format!(
            "a negative value {lo}: every panel here shows a count, a rate, a time or a share"
        ));
    }
    // An annotation states no unit: data is all it needs.
    let unit = q.unit.as_deref()?;
    unit_problem(unit, &q.expr, hi, cpus)
}

/// Whether the largest value `hi` and the query fit `unit`.
fn unit_problem(unit: &str, expr: &str, hi: f64, cpus: f64) -> Option<String> {
    let is_rate = expr.contains("rate(");
    let cpu = is_rate && expr.contains("cpu") && expr.contains("_seconds_total");
    match unit {
        "s" if !reads_seconds(expr) => {
            Some("unit s, but the query reads no *_seconds metric".into())
        }
        "s" if hi > 60.0 => Some(format!("unit s, but {hi} s is beyond any timeout here")),
        "reqps" | "cps" | "ops"
            if !(is_rate && expr.contains("_total") || expr.contains("_per_second")) =>
        {
            Some(format!(
                "unit {unit}, but the query is no rate() of a counter and no *_per_second gauge"
            ))
        }
        "reqps" | "cps" | "ops" if hi > 1e5 => Some(format!(
            "unit {unit}, but {hi}/s is implausible for this run"
        )),
        "percentunit" if hi > 1.05 => Some(format!("unit percentunit, but {hi} is far above 1")),
        "short" if cpu && hi > cpus + 0.5 => Some(format!(
            "a rate of CPU seconds is cores: {hi} on {cpus} CPUs"
        )),
        "short" if hi > 1e9 => Some(format!("unit short, but {hi} is implausible")),
        "bytes" if !expr.contains("_bytes") => {
            Some("unit bytes, but the query reads no *_bytes metric".into())
        }
        "s" | "reqps" | "cps" | "ops" | "percentunit" | "short" | "bytes" => None,
        other => Some(format!(
            "unit {other:?}: this test knows no rule for it; add one"
        )),
    }
}

/// A metric in base units of seconds: `*_seconds`, its `_bucket`, `_sum`, `_count`, `_total`.
fn reads_seconds(expr: &str) -> bool {
    [
        "_seconds{",
        "_seconds_bucket{",
        "_seconds_sum{",
        "_seconds_count{",
        "_seconds_total{",
    ]
    .iter()
    .any(|s| expr.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(expr: &str, unit: &str) -> Query {
        Query {
            dashboard: "d.json".into(),
            panel: "p".into(),
            ref_id: "A".into(),
            expr: expr.into(),
            unit: Some(unit.into()),
        }
    }

    fn series(values: &[f64]) -> Vec<Series> {
        vec![Series {
            labels: "{}".into(),
            values: values.to_vec(),
        }]
    }

    #[test]
    fn variables_are_put_in_as_grafana_would() {
        let v = Variables {
            job: "loadgen".into(),
            rate_interval: Duration::from_secs(4),
            interval: Duration::from_secs(1),
            range: Duration::from_millis(30_500),
        };
        let e = r#"sum(rate(x_total{namespace=~"$namespace", job=~"$job"}[$__rate_interval])) + increase(y_total{job=~"$job"}[$__range]) + z[$__interval]"#;
        assert_eq!(
            substitute(e, &v),
            r#"sum(rate(x_total{namespace=~".*", job=~"loadgen"}[4000ms])) + increase(y_total{job=~"loadgen"}[30500ms]) + z[1000ms]"#
        );
    }

    #[test]
    fn an_answer_without_finite_samples_is_no_data() {
        let sent = q("sum(rate(loadgen_requests_sent_total{}[4s]))", "reqps");
        assert!(judge(&sent, &[], 2.0).unwrap().starts_with("no data"));
        let nan = series(&[f64::NAN, f64::NAN]);
        assert!(judge(&sent, &nan, 2.0).unwrap().starts_with("no data"));
        assert_eq!(judge(&sent, &series(&[f64::NAN, 0.0, 39.5]), 2.0), None);
    }

    #[test]
    fn units_are_checked_against_the_query_and_the_values() {
        let latency = "histogram_quantile(0.99, sum by (le) (rate(loadgen_request_latency_seconds_bucket{}[4s])))";
        assert_eq!(judge(&q(latency, "s"), &series(&[0.003]), 2.0), None);
        assert!(judge(&q(latency, "s"), &series(&[600.0]), 2.0).is_some());
        let not_seconds = "sum(rate(loadgen_requests_sent_total{}[4s]))";
        assert!(judge(&q(not_seconds, "s"), &series(&[1.0]), 2.0).is_some());
        let gauge = "max(loadgen_steps_planned{})";
        assert!(judge(&q(gauge, "reqps"), &series(&[3.0]), 2.0).is_some());
        let target = "max(loadgen_step_target_rate_requests_per_second{})";
        assert_eq!(judge(&q(target, "reqps"), &series(&[40.0]), 2.0), None);
        let ratio = "max(loadgen_step_success_ratio{})";
        assert!(judge(&q(ratio, "percentunit"), &series(&[3.0]), 2.0).is_some());
        let cores = "sum by (replica) (rate(loadgen_replica_cpu_seconds_total{}[4s]))";
        assert!(judge(&q(cores, "short"), &series(&[5.0]), 2.0).is_some());
        assert_eq!(judge(&q(cores, "short"), &series(&[0.4]), 2.0), None);
        assert!(judge(&q(gauge, "furlongs"), &series(&[1.0]), 2.0).is_some());
        assert!(judge(&q(gauge, "short"), &series(&[-1.0]), 2.0).is_some());
    }

    #[test]
    fn every_dashboard_has_queries_with_units_and_variables() {
        for (name, _) in DASHBOARDS {
            let doc = load(name);
            let qs = queries(name, &doc);
            assert!(qs.len() >= 10, "{name}: {} queries", qs.len());
            for q in qs.iter().filter(|q| !q.panel.starts_with("annotation ")) {
                assert!(q.unit.is_some(), "{}: no unit", q.name());
            }
            let vars = variable_queries(&doc);
            let names: Vec<&str> = vars.iter().map(|(n, _, _)| n.as_str()).collect();
            assert_eq!(names, ["namespace", "job"], "{name}");
        }
    }
}
