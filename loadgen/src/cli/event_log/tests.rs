//! Golden lines of every event kind (at a fixed time), the progress throttle, and the extra
//! fields of a `compare` side.

use super::*;
use loadgen_engine::progress::LiveSnapshot;
use loadgen_model::result::{CheckName, Finding, LatencySummary, TopologyView};
use loadgen_model::search::{Ending, ProbeKind};

/// 2026-12-01T10:00:00Z.
fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_119_200)
}

fn line(event: &Event) -> String {
    render_at(event, at(), &Map::new()).expect("a line")
}

/// The fixed head of every event line, then `rest` (the other keys, in order).
fn golden(level: &str, message: &str, rest: &str) -> String {
    format!(
        r#"{{"time":"2026-12-01T10:00:00.000000Z","level":"{level}","message":"{message}","target":"loadgen::campaign",{rest}}}"#
    )
}

/// A saved step (the fixture run.json's first) given these numbers, no counter and no CPU.
fn finished() -> StepResult {
    let run: loadgen_model::result::CampaignResult =
        serde_json::from_str(include_str!("../../../tests/fixtures/run.json")).unwrap();
    let mut s = run.steps[0].clone();
    (s.campaign, s.name) = (Some("A".into()), "s1".into());
    (s.rate_rps, s.duration_s) = (250.0, 10.0);
    (s.intended, s.sent, s.dropped, s.ok, s.failed) = (2500, 2490, 10, 2480, 10);
    (s.achieved_rps, s.success_ratio) = (Some(249.0), Some(0.992));
    s.latency_ms = LatencySummary {
        count: 2490,
        p50: Some(3.5),
        p99: Some(41.5),
        max: Some(80.0),
        ..Default::default()
    };
    s.topology = Some(TopologyView {
        replicas: 2,
        cpu_limit_cores: Some(1.5),
        store: "memory".into(),
        autoscale: None,
        tls: false,
    });
    (s.counter, s.counted_ratio, s.cpu) = (None, None, None);
    (s.valid, s.invalid_reason, s.interrupted, s.target_failed) = (true, None, false, false);
    s
}

#[test]
fn a_step_start_gives_its_configuration() {
    let e = Event::StepStarted {
        index: 0,
        total: 3,
        step: StepId::parse("A/s1"),
        rate_rps: 250.0,
        duration: Duration::from_secs(10),
        replicas: 2,
        cpu_limit_cores: None,
    };
    assert_eq!(
        line(&e),
        golden(
            "info",
            "[1/3] A/s1: 250 rps for 10.0 s, 2 replica(s), cpu limit none",
            r#""step":"A/s1","cpu_limit_cores":null,"duration_s":10.0,"event":"step_started","number":1,"rate_rps":250.0,"replicas":2,"total":3"#
        )
    );
}

#[test]
fn progress_gives_the_live_counts_and_null_for_what_is_not_known_yet() {
    let live = LiveSnapshot {
        elapsed: Duration::from_millis(2500),
        sent: 625,
        ok: 620,
        failed: 5,
        dropped: 0,
        in_flight: 3,
        recent_p99_ms: Some(12.5),
        generation: 10,
        connections_open: 4,
    };
    let e = Event::Progress {
        step: StepId::parse("A/s1"),
        live,
        detail: None,
        total: Duration::from_secs(10),
    };
    assert_eq!(
        line(&e),
        golden(
            "info",
            "2.5/10s       250 req/s  ok 620  err 5  dropped 0  in-flight 3  p99 12.50 ms",
            r#""step":"A/s1","achieved_rps":250.0,"dropped":0,"elapsed_s":2.5,"event":"progress","failed":5,"in_flight":3,"ok":620,"recent_p99_ms":12.5,"sent":625,"total_s":10.0"#
        )
    );
    let reading = |generation| Event::Progress {
        step: StepId::parse("A/s1"),
        live: LiveSnapshot {
            generation,
            ..LiveSnapshot::default()
        },
        detail: None,
        total: Duration::from_secs(10),
    };
    let v: Value = serde_json::from_str(&line(&reading(1))).unwrap();
    assert_eq!(v["achieved_rps"], Value::Null);
    assert_eq!(v["recent_p99_ms"], Value::Null);
    assert_eq!(
        render_json(&reading(0)),
        None,
        "not started: nothing to log"
    );
}

#[test]
fn a_finished_step_gives_run_json_numbers_and_null_for_the_unmeasured() {
    let e = Event::StepFinished {
        result: Box::new(finished()),
    };
    assert_eq!(
        line(&e),
        golden(
            "info",
            "intended 2500 sent 2490 ok 2480 (99.2 %) counted — p99 41.5 ms",
            concat!(
                r#""step":"A/s1","achieved_rps":249.0,"counted_ratio":null,"counter_delta":null,"#,
                r#""cpu_cores_used":null,"cpu_limit_cores":1.5,"dropped":10,"duration_s":10.0,"#,
                r#""event":"step_finished","failed":10,"intended":2500,"interrupted":false,"#,
                r#""invalid_reason":null,"max_ms":80.0,"ok":2480,"p50_ms":3.5,"p99_ms":41.5,"#,
                r#""rate_rps":250.0,"replicas":2,"sent":2490,"success_ratio":0.992,"#,
                r#""target_failed":false,"throttled_ratio":null,"valid":true"#
            )
        )
    );
}

#[test]
fn an_invalid_step_warns_and_a_failed_target_or_step_is_an_error() {
    let level = |e: &Event| serde_json::from_str::<Value>(&line(e)).unwrap()["level"].clone();
    let mut invalid = finished();
    invalid.valid = false;
    invalid.invalid_reason = Some("schedule lag p99 12 ms".into());
    let invalid = Event::StepFinished {
        result: Box::new(invalid),
    };
    assert_eq!(level(&invalid), "warn");
    assert!(line(&invalid).contains(
        r#""message":"intended 2500 sent 2490 ok 2480 (99.2 %) counted — p99 41.5 ms  [INVALID]""#
    ));
    let mut crashed = finished();
    crashed.target_failed = true;
    let crashed = Event::StepFinished {
        result: Box::new(crashed),
    };
    assert_eq!(level(&crashed), "error");
    let failed = Event::StepFailed {
        step: StepId::parse("A/s2"),
        cause: "replica 0 exited: \"bad flag\"".into(),
    };
    assert_eq!(
        line(&failed),
        golden(
            "error",
            r#"step failed: replica 0 exited: \"bad flag\""#,
            r#""step":"A/s2","cause":"replica 0 exited: \"bad flag\"","event":"step_failed""#
        )
    );
}

#[test]
fn findings_take_their_level_from_their_severity_and_a_step_only_when_they_have_one() {
    let run_wide = Event::Finding {
        finding: Finding {
            check: CheckName::OrphansSwept,
            severity: Severity::Warn,
            message: "swept 2 processes a killed run left".into(),
            step: None,
        },
    };
    assert_eq!(
        line(&run_wide),
        golden(
            "warn",
            "swept 2 processes a killed run left",
            r#""check":"orphans_swept","event":"finding","severity":"warn""#
        )
    );
    let stop = Event::Finding {
        finding: Finding {
            check: CheckName::StepFailed,
            severity: Severity::Fail,
            message: "stopped after A/s1".into(),
            step: Some(StepId::parse("A/s1")),
        },
    };
    assert_eq!(
        line(&stop),
        golden(
            "error",
            "stopped after A/s1",
            r#""step":"A/s1","check":"step_failed","event":"finding","severity":"fail""#
        )
    );
}

#[test]
fn a_search_gives_its_probes_their_verdicts_and_its_ending() {
    let started = Event::ProbeStarted {
        campaign: "A".into(),
        configuration: "1c".into(),
        index: 0,
        worst_case: 7,
        kind: ProbeKind::Grow,
        step: StepId::parse("A/p1"),
        rate_rps: 300.0,
        duration: Duration::from_secs(5),
        replicas: 1,
        cpu_limit_cores: Some(0.5),
    };
    assert_eq!(
        line(&started),
        golden(
            "info",
            "[search A 1c 1/≤7 grow] A/p1: 300 rps for 5.0 s",
            r#""step":"A/p1","campaign":"A","configuration":"1c","cpu_limit_cores":0.5,"duration_s":5.0,"event":"probe_started","kind":"grow","probe":1,"rate_rps":300.0,"replicas":1,"worst_case":7"#
        )
    );
    let judged = Event::ProbeJudged {
        step: StepId::parse("A/p1"),
        passed: false,
        broken: vec!["p99 612 ms > 500 ms".into()],
    };
    assert_eq!(
        line(&judged),
        golden(
            "info",
            "SLO not met: p99 612 ms > 500 ms",
            r#""step":"A/p1","broken":["p99 612 ms > 500 ms"],"event":"probe_judged","passed":false"#
        )
    );
    let ended = Event::SearchEnded {
        campaign: "A".into(),
        configuration: "1c".into(),
        ending: Ending::Converged,
    };
    assert_eq!(
        line(&ended),
        golden(
            "info",
            "A 1c: converged",
            r#""campaign":"A","configuration":"1c","ending":"converged","event":"search_ended""#
        )
    );
}

#[test]
fn the_run_end_is_logged_and_the_end_of_an_attack_is_not() {
    let ended = Event::RunEnded {
        status: RunStatus::Interrupted,
    };
    assert_eq!(
        line(&ended),
        golden(
            "warn",
            "run interrupted",
            r#""event":"run_ended","status":"interrupted""#
        )
    );
    let cleared = Event::AttackEnded {
        step: StepId::parse("A/s1"),
        last: LiveSnapshot::default(),
        detail: None,
    };
    assert_eq!(render_json(&cleared), None);
}

#[test]
fn a_side_is_on_every_line_and_never_replaces_an_event_field() {
    let mut extra = Map::new();
    extra.insert("side".into(), Value::from("base"));
    extra.insert("event".into(), Value::from("not this"));
    let e = Event::RunEnded {
        status: RunStatus::Completed,
    };
    let v: Value = serde_json::from_str(&render_at(&e, at(), &extra).unwrap()).unwrap();
    assert_eq!(v["side"], "base");
    assert_eq!(v["event"], "run_ended");
}

#[test]
fn progress_is_at_most_one_line_a_second_per_step() {
    let mut t = Throttle::default();
    let (a, b) = (StepId::parse("A/s1"), StepId::parse("A/s2"));
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    assert!(t.admit(&a, ms(0)));
    assert!(!t.admit(&a, ms(250)));
    assert!(!t.admit(&a, ms(999)));
    assert!(t.admit(&b, ms(500)), "another step has its own second");
    assert!(t.admit(&a, ms(1000)));
    assert!(!t.admit(&a, ms(1750)));
    t.forget(&a);
    assert!(
        t.admit(&a, ms(1800)),
        "a new attack of the step starts afresh"
    );
}
