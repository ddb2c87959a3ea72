//! The watchers' state from a scripted event stream: what a scrape and the live page show.

use std::sync::Arc;
use std::time::Duration;

use super::live::{LivePage, MAX_SECONDS};
use super::metrics::RunMetrics;
use crate::campaign::{Event, PlannedStep, ReplicaUsage};
use loadgen_engine::progress::{LiveDetail, LiveSnapshot};
use loadgen_model::result::{CampaignResult, OutcomeCounts, StepResult};
use loadgen_model::step_id::StepId;

/// A real saved step (the fixture run.json), renamed and given these counts.
fn saved_step(name: &str, sent: u64, ok: u64) -> StepResult {
    let run: CampaignResult =
        serde_json::from_str(include_str!("../../tests/fixtures/run.json")).unwrap();
    let mut s = run.steps[0].clone();
    s.campaign = Some("c".into());
    s.name = name.into();
    (s.intended, s.sent, s.ok, s.failed, s.dropped) = (sent, sent, ok, sent - ok, 0);
    s.outcomes = OutcomeCounts {
        ok,
        status: [("503".to_string(), sent - ok)].into(),
        ..OutcomeCounts::default()
    };
    s
}

fn reading(secs: f64, sent: u64, ok: u64) -> LiveSnapshot {
    LiveSnapshot {
        elapsed: Duration::from_secs_f64(secs),
        sent,
        ok,
        failed: sent - ok,
        connections_open: 2,
        ..LiveSnapshot::default()
    }
}

fn detail(ok: u64, failed: u64, latencies_us: &[u64]) -> Option<Arc<LiveDetail>> {
    let mut d = LiveDetail {
        outcomes: OutcomeCounts {
            ok,
            status: [("503".to_string(), failed)].into(),
            ..OutcomeCounts::default()
        },
        connections_opened: 2,
        ..LiveDetail::default()
    };
    for us in latencies_us {
        d.buckets.latency.record(*us);
    }
    Some(Arc::new(d))
}

fn started(index: usize, name: &str) -> Event {
    Event::StepStarted {
        index,
        total: 2,
        step: StepId::parse(&format!("c/{name}")),
        rate_rps: 100.0,
        duration: Duration::from_secs(5),
        replicas: 2,
        cpu_limit_cores: Some(0.5),
    }
}

/// The value of the series `name` (with its labels, as written) in an exposition.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn counters_add_up_over_steps_and_the_gauges_show_the_current_one() {
    let m = RunMetrics::new();
    let sink = m.sink();
    let id = StepId::parse("c/one");
    sink.emit(started(0, "one"));
    sink.emit(Event::Progress {
        step: id.clone(),
        live: reading(1.0, 10, 9),
        detail: detail(9, 1, &[800, 3_000]),
        total: Duration::from_secs(5),
    });
    let mid = m.encode();
    assert_eq!(
        value(&mid, "loadgen_requests_sent_total"),
        Some(10.0),
        "{mid}"
    );
    assert_eq!(value(&mid, "loadgen_step_running"), Some(1.0));
    sink.emit(Event::AttackEnded {
        step: id.clone(),
        last: reading(5.0, 20, 18),
        detail: detail(18, 2, &[800, 3_000, 40_000]),
    });
    sink.emit(Event::StepFinished {
        result: Box::new(saved_step("one", 20, 18)),
    });
    sink.emit(started(1, "two"));
    sink.emit(Event::Progress {
        step: StepId::parse("c/two"),
        live: reading(1.0, 5, 5),
        detail: detail(5, 0, &[700]),
        total: Duration::from_secs(5),
    });
    let text = m.encode();
    // The first step's total is kept, the second's reading comes on top: never a drop.
    assert_eq!(
        value(&text, "loadgen_requests_sent_total"),
        Some(25.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "loadgen_responses_total{outcome=\"ok\"}"),
        Some(23.0)
    );
    assert_eq!(
        value(&text, "loadgen_responses_total{outcome=\"http_503\"}"),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "loadgen_request_latency_seconds_count"),
        Some(4.0)
    );
    assert_eq!(
        value(
            &text,
            "loadgen_request_latency_seconds_bucket{le=\"0.001\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&text, "loadgen_request_latency_seconds_bucket{le=\"0.05\"}"),
        Some(4.0)
    );
    assert_eq!(value(&text, "loadgen_step_index"), Some(1.0));
    assert_eq!(value(&text, "loadgen_step_cpu_limit_cores"), Some(0.5));
    assert_eq!(
        value(&text, "loadgen_steps_finished_total{verdict=\"valid\"}").is_some(),
        saved_step("x", 1, 1).valid
    );
    // One step_info series: the current step's.
    assert_eq!(text.matches("loadgen_step_info{").count(), 1, "{text}");
    assert!(text.contains("step=\"c/two\""), "{text}");
}

#[test]
fn a_step_not_reported_live_is_counted_from_its_result_and_replica_cpu_keeps_growing() {
    let m = RunMetrics::new();
    let sink = m.sink();
    let usage = |cpu_s| ReplicaUsage {
        replica: 0,
        cpu_s: Some(cpu_s),
        periods: Some(10),
        throttled_periods: Some(4),
        throttled_s: None,
    };
    sink.emit(started(0, "sharded"));
    sink.emit(Event::ReplicaCpu {
        step: StepId::parse("c/sharded"),
        replicas: vec![usage(1.5)],
    });
    sink.emit(Event::StepFinished {
        result: Box::new(saved_step("sharded", 40, 30)),
    });
    // The next step's group starts again from 0: the exported counter must not go back.
    sink.emit(started(1, "next"));
    sink.emit(Event::ReplicaCpu {
        step: StepId::parse("c/next"),
        replicas: vec![usage(0.25)],
    });
    let text = m.encode();
    assert_eq!(
        value(&text, "loadgen_requests_sent_total"),
        Some(40.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "loadgen_responses_total{outcome=\"http_503\"}"),
        Some(10.0)
    );
    assert_eq!(
        value(&text, "loadgen_replica_cpu_seconds_total{replica=\"0\"}"),
        Some(1.75)
    );
    assert_eq!(
        value(
            &text,
            "loadgen_replica_cpu_throttled_periods_total{replica=\"0\"}"
        ),
        Some(8.0)
    );
    // Not measured is absent, never 0.
    assert!(
        !text.contains("loadgen_replica_cpu_throttled_seconds_total"),
        "{text}"
    );
}

#[test]
fn the_live_page_keeps_bounded_points_and_marks_each_probe_with_its_verdict() {
    let page = LivePage::new();
    let sink = page.sink();
    sink.emit(Event::RunStarted {
        scenario: "s".into(),
        out_dir: None,
        steps: vec![PlannedStep {
            step: StepId::parse("c/one"),
            rate_rps: 100.0,
            duration: Duration::from_secs(5),
            replicas: 2,
            cpu_limit_cores: None,
        }],
        searches: 1,
    });
    sink.emit(started(0, "one"));
    for i in 1..=(MAX_SECONDS as u64 + 50) {
        sink.emit(Event::Progress {
            step: StepId::parse("c/one"),
            live: reading(i as f64, 100 * i, 100 * i),
            detail: None,
            total: Duration::from_secs(5),
        });
    }
    sink.emit(Event::StepFinished {
        result: Box::new(saved_step("one", 20, 18)),
    });
    sink.emit(Event::ProbeJudged {
        step: StepId::parse("c/one"),
        passed: false,
        broken: vec!["p99 9 ms > 5 ms".into()],
    });
    let state: serde_json::Value = serde_json::from_str(&page.state_json()).unwrap();
    let seconds = state["current"]["seconds"].as_array().unwrap();
    assert_eq!(seconds.len(), MAX_SECONDS);
    assert!((seconds[5]["sent_rps"].as_f64().unwrap() - 100.0).abs() < 1e-6);
    let row = &state["finished"][0];
    assert_eq!(row["step"], "c/one");
    assert_eq!(
        (row["sent"].as_u64(), row["ok"].as_u64()),
        (Some(20), Some(18))
    );
    assert_eq!(row["slo"], "not met: p99 9 ms > 5 ms");
    assert_eq!(state["status"], "running");
    assert!(state["seq"].as_u64().unwrap() > MAX_SECONDS as u64);
}
