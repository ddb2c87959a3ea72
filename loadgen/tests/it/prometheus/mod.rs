//! The Prometheus probe: query building, parsing of recorded real answers, an unreachable
//! Prometheus, and the real thing — Debian's `prometheus` scraping a real `polymetrie` while
//! clicks are posted, read back over the step's window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use loadgen::probe::prometheus::response::{self, Edges, ReadError};
use loadgen::probe::prometheus::{server, PrometheusProbe};
use loadgen::promql::{self as query, QueryError, QueryParams};
use loadgen_judge::check::prometheus::cross_check;
use loadgen_model::result::{
    CheckName, CounterReading, CpuReading, Finding, GeneratorHealth, LatencySummary, OutcomeCounts,
    PrometheusView, Severity, StepResult,
};

use crate::common::{self, external, http, polymetrie::Polymetrie, procs};

fn fixture(name: &str) -> String {
    let p = common::manifest_dir()
        .join("tests/fixtures/prometheus")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The instants the fixtures were recorded at (see fixtures/prometheus/README.md).
const REC_START: f64 = 1795791777.833;
const REC_EVAL: f64 = 1795791784.833;
const EDGES: Edges = Edges {
    start_s: REC_START,
    eval_s: REC_EVAL,
    scrape_interval_s: 1.0,
};

fn params() -> QueryParams {
    QueryParams {
        site: "demo".into(),
        step: "s1".into(),
        start_s: 1000.0,
        end_s: 1006.5,
        eval_s: 1008.0,
        lookbehind: Duration::from_secs(3),
    }
}

// ---- query building ----

#[test]
fn defaults_render_every_placeholder() {
    let set = query::resolve(&BTreeMap::new()).unwrap();
    assert_eq!(
        set.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "counter_increase",
            "counter_per_replica",
            "cpu_cores",
            "cpu_per_replica"
        ],
        "throttled_ratio has no local default"
    );
    let cpu = query::render("cpu_cores", &set["cpu_cores"], &params()).unwrap();
    assert_eq!(
        cpu,
        r#"sum(rate(process_cpu_seconds_total{step="s1"}[6500ms] @ 1006.500))"#
    );
    let counter = query::render("counter_increase", &set["counter_increase"], &params()).unwrap();
    // span = eval - start + lookbehind = 8 s + 3 s
    assert_eq!(
        counter,
        r#"polymetrie_clicks_total{site="demo",step="s1"}[11000ms]"#
    );
    for (name, t) in query::kubernetes_defaults() {
        let q = query::render(name, t, &params()).unwrap();
        assert!(!q.contains("{window}") && !q.contains("{end}"), "{q}");
    }
}

#[test]
fn overrides_replace_disable_and_add() {
    let overrides = BTreeMap::from([
        (
            "cpu_cores".to_string(),
            "sum(my_cpu{job=\"x\"}[{window}]) / {window_s}".to_string(),
        ),
        ("counter_per_replica".to_string(), "  ".to_string()),
        (
            "throttled_ratio".to_string(),
            "avg(t{step=\"{step}\"} @ {start})".to_string(),
        ),
    ]);
    let set = query::resolve(&overrides).unwrap();
    assert!(
        !set.contains_key("counter_per_replica"),
        "an empty override disables a query"
    );
    assert_eq!(
        query::render("cpu_cores", &set["cpu_cores"], &params()).unwrap(),
        r#"sum(my_cpu{job="x"}[6500ms]) / 6.500"#
    );
    assert_eq!(
        query::render("throttled_ratio", &set["throttled_ratio"], &params()).unwrap(),
        r#"avg(t{step="s1"} @ 1000.000)"#
    );
}

#[test]
fn bad_overrides_are_named() {
    let unknown = BTreeMap::from([("cpu".to_string(), "up".to_string())]);
    assert_eq!(
        query::validate_overrides(&unknown),
        Err(QueryError::UnknownName("cpu".into()))
    );
    let typo = BTreeMap::from([(
        "cpu_cores".to_string(),
        r#"sum(x{site="{sitee}"}[{window}])"#.to_string(),
    )]);
    let err = query::resolve(&typo).unwrap_err();
    assert_eq!(
        err,
        QueryError::UnknownPlaceholder {
            name: "cpu_cores".into(),
            placeholder: "sitee".into()
        }
    );
    assert!(err.to_string().contains("{sitee}"), "{err}");
}

#[test]
fn label_values_are_escaped() {
    let mut p = params();
    p.step = r#"a"b\c"#.into();
    let q = query::render("x", r#"up{step="{step}"}"#, &p).unwrap();
    assert_eq!(q, r#"up{step="a\"b\\c"}"#);
    assert_eq!(query::promql_duration(Duration::ZERO), "1ms");
}

// ---- parsing recorded answers ----

#[test]
fn counter_matrix_is_read_at_the_edges() {
    let r = response::parse_query_body(&fixture("query_counter_matrix.json")).unwrap();
    let edges = EDGES;
    // Samples every second at .075, +40 each; start .833 lies 0.758 s after 406.
    let expected = 686.0 - (406.0 + 40.0 * 0.758);
    let got = response::total(r.data(), edges).unwrap();
    // Timestamps near 1.8e9 s carry ms precision only.
    assert!((got - expected).abs() < 1e-3, "{got} vs {expected}");
    let per = response::per_replica(r.data(), edges).unwrap();
    assert_eq!(per.keys().collect::<Vec<_>>(), ["0"]);
}

#[test]
fn increase_and_cpu_vectors_are_taken_as_they_are() {
    let edges = EDGES;
    let inc = response::parse_query_body(&fixture("query_counter_increase.json")).unwrap();
    assert_eq!(response::total(inc.data(), edges), Ok(240.0));
    let cpu = response::parse_query_body(&fixture("query_cpu_per_replica.json")).unwrap();
    let per = response::per_replica(cpu.data(), edges).unwrap();
    assert_eq!(per.get("0"), Some(&0.004));
}

#[test]
fn empty_nan_and_errors_are_not_numbers() {
    let edges = EDGES;
    let empty = response::parse_query_body(&fixture("query_empty.json")).unwrap();
    assert_eq!(
        response::total(empty.data(), edges),
        Err(ReadError::NoSeries)
    );
    let nan = response::parse_query_body(&fixture("query_nan.json")).unwrap();
    assert!(matches!(
        response::total(nan.data(), edges),
        Err(ReadError::NotANumber(_))
    ));
    match response::parse_query_body(&fixture("query_bad.json")) {
        Err(ReadError::Api { kind, message }) => {
            assert_eq!(kind, "bad_data");
            assert!(message.contains("parse error"), "{message}");
        }
        other => panic!("expected an api error, got {other:?}"),
    }
}

#[test]
fn edge_reading_handles_birth_and_reset() {
    let e = Edges {
        start_s: 10.0,
        eval_s: 20.0,
        scrape_interval_s: 1.0,
    };
    // Born inside the window: counts from 0, not from its first sample.
    assert_eq!(response::edge_increase(&[(11.0, 5.0), (12.0, 9.0)], e), 9.0);
    // Born one scrape before its first sample at 10.5 (6 clicks): 3 of them before start.
    assert_eq!(response::edge_increase(&[(10.5, 6.0), (11.5, 9.0)], e), 6.0);
    // Value at start interpolated to 2; then +2, +5, and a reset (replica restarted): +3.
    assert_eq!(
        response::edge_increase(&[(9.0, 0.0), (11.0, 4.0), (12.0, 9.0), (13.0, 3.0)], e),
        10.0
    );
    // Samples after the evaluation time are ignored.
    assert_eq!(response::edge_increase(&[(9.0, 0.0), (21.0, 50.0)], e), 0.0);
}

#[test]
fn target_lists_say_who_is_scraped() {
    let since = REC_START - 60.0;
    let none = response::parse_targets_body(&fixture("targets_unscraped.json")).unwrap();
    assert!(
        !response::scrape_status(&none, None, since).done(),
        "no target is not done"
    );
    let unknown = response::parse_targets_body(&fixture("targets_unknown.json")).unwrap();
    let s = response::scrape_status(&unknown, Some("s1"), since);
    assert_eq!((s.targets, s.done()), (1, false));
    assert!(s.pending[0].contains("not scraped"), "{:?}", s.pending);
    let up = response::parse_targets_body(&fixture("targets_up.json")).unwrap();
    let s = response::scrape_status(&up, Some("s1"), since);
    assert!(s.done(), "{s:?}");
    assert_eq!(s.scrape_interval_s, Some(1.0));
    assert_eq!(response::scrape_status(&up, Some("s2"), since).targets, 0);
    let down = response::parse_targets_body(&fixture("targets_down.json")).unwrap();
    let s = response::scrape_status(&down, Some("s1"), since);
    assert!(
        !s.done() && s.pending[0].contains("connection refused"),
        "{s:?}"
    );
}

// ---- cross-check ----

fn step_with(view: Option<PrometheusView>, delta: Option<i64>, cores: Option<f64>) -> StepResult {
    StepResult {
        campaign: None,
        name: "s1".into(),
        rate_rps: 40.0,
        duration_s: 7.0,
        started_at: None,
        ended_at: None,
        intended: 280,
        sent: 280,
        dropped: 0,
        ok: 280,
        failed: 0,
        outcomes: OutcomeCounts::default(),
        achieved_rps: None,
        success_ratio: None,
        latency_ms: LatencySummary::default(),
        service_time_ms: LatencySummary::default(),
        schedule_lag_ms: LatencySummary::default(),
        connection_wait_ms: LatencySummary::default(),
        timeline: Vec::new(),
        scaling: Vec::new(),
        histogram: None,
        generator: GeneratorHealth::default(),
        topology: None,
        counter: Some(CounterReading {
            delta,
            ..CounterReading::default()
        }),
        counted_ratio: None,
        cpu: Some(CpuReading {
            cores_used: cores,
            ..CpuReading::default()
        }),
        prometheus: view,
        valid: true,
        invalid_reason: None,
        interrupted: false,
        target_failed: false,
        checks: Vec::new(),
        sharding: None,
        per_endpoint: Vec::new(),
        tls: None,
        timing: None,
    }
}

fn view(counter: Option<f64>, cpu: Option<f64>, window_s: f64) -> PrometheusView {
    PrometheusView {
        counter_increase: counter,
        cpu_cores_used: cpu,
        window_s,
        scrape_interval_s: Some(1.0),
        ..PrometheusView::default()
    }
}

#[test]
fn cross_check_applies_the_stated_tolerances() {
    let by_check = |f: &[loadgen_model::result::Finding], c: CheckName| {
        f.iter().find(|x| x.check == c).map(|x| x.severity)
    };
    let ok = cross_check(&step_with(
        Some(view(Some(270.0), Some(0.55), 7.0)),
        Some(280),
        Some(0.5),
    ));
    assert_eq!(
        by_check(&ok, CheckName::PrometheusCounter),
        Some(Severity::Info)
    );
    assert_eq!(
        by_check(&ok, CheckName::PrometheusCpu),
        Some(Severity::Info)
    );
    assert_eq!(by_check(&ok, CheckName::PrometheusWindow), None);
    let bad = cross_check(&step_with(
        Some(view(Some(240.0), Some(0.65), 7.0)),
        Some(280),
        Some(0.5),
    ));
    assert_eq!(
        by_check(&bad, CheckName::PrometheusCounter),
        Some(Severity::Warn)
    );
    assert_eq!(
        by_check(&bad, CheckName::PrometheusCpu),
        Some(Severity::Warn)
    );
    let short = cross_check(&step_with(
        Some(view(Some(80.0), None, 3.0)),
        Some(80),
        None,
    ));
    assert_eq!(
        by_check(&short, CheckName::PrometheusWindow),
        Some(Severity::Warn)
    );
    assert_eq!(
        by_check(&short, CheckName::PrometheusCpu),
        None,
        "nothing to compare, nothing said"
    );
    assert!(cross_check(&step_with(None, Some(1), Some(1.0))).is_empty());
}

// ---- an unreachable Prometheus ----

/// Observes step `s1` over the last 6 s, for the tests of Prometheus servers that fail.
async fn observe_last_6s(probe: &PrometheusProbe) -> (Option<PrometheusView>, Vec<Finding>) {
    let end = SystemTime::now();
    probe
        .observe(
            "s1",
            end - Duration::from_secs(6),
            end,
            "demo",
            &BTreeMap::new(),
        )
        .await
}

#[tokio::test]
async fn unreachable_prometheus_gives_none_and_a_finding_fast() {
    let port = server::free_port().unwrap(); // nobody listens there
    let probe = PrometheusProbe::external(&format!("http://127.0.0.1:{port}")).unwrap();
    let t0 = Instant::now();
    let (view, findings) = observe_last_6s(&probe).await;
    assert!(view.is_none(), "{view:?}");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].severity, Severity::Warn);
    assert!(
        findings[0].message.contains("unreachable"),
        "{}",
        findings[0].message
    );
    assert!(
        t0.elapsed() < loadgen::probe::prometheus::QUERY_TIMEOUT,
        "a refused connection must not wait for the timeout: {:?}",
        t0.elapsed()
    );
    assert!(probe.wait_scraped(Duration::from_secs(1)).await.is_err());
    probe.shutdown().await;
}

mod real;
