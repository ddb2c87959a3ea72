//! The shipped scenarios (td4.toml's 19 steps, smoke.toml), a fixture that sets every key,
//! and the runner's helpers `scale_time` / `select_steps`.

use super::*;

#[test]
fn td4_expands_to_the_19_steps_of_the_original() {
    let plan = Plan::load(&scenario_file("td4.toml")).unwrap();
    // (campaign, replicas, cpu limit, rate, duration s, requests) in the reference order.
    type Row = (&'static str, u32, Option<f64>, f64, u64, u64);
    let expected: [Row; 19] = [
        ("A", 1, Some(1.0), 1000.0, 10, 10_000),
        ("A", 1, Some(1.0), 1000.0, 10, 10_000),
        ("A", 1, Some(1.0), 100.0, 10, 1_000),
        ("A", 1, Some(1.0), 250.0, 10, 2_500),
        ("A", 1, Some(1.0), 200.0, 10, 2_000),
        ("A", 1, Some(1.0), 180.0, 10, 1_800),
        ("A", 2, Some(1.0), 500.0, 10, 5_000),
        ("A", 2, Some(1.0), 250.0, 10, 2_500),
        ("A", 2, Some(1.5), 250.0, 10, 2_500),
        ("B", 1, None, 180.0, 30, 5_400),
        ("B", 2, None, 180.0, 30, 5_400),
        ("B", 1, None, 190.0, 30, 5_700),
        ("B", 1, None, 200.0, 30, 6_000),
        ("B", 1, None, 300.0, 30, 9_000),
        ("B", 2, None, 300.0, 30, 9_000),
        ("B", 1, None, 1500.0, 30, 45_000),
        ("B", 2, None, 1500.0, 30, 45_000),
        ("C", 1, None, 500.0, 600, 300_000),
        ("C", 2, None, 500.0, 600, 300_000),
    ];
    assert_eq!(plan.steps.len(), 19);
    for (step, (campaign, replicas, cpu, rate, secs, requests)) in plan.steps.iter().zip(expected) {
        let id = step.id();
        assert_eq!(step.campaign, campaign, "{id}");
        assert_eq!(step.topology.replicas, replicas, "{id}");
        assert_eq!(step.topology.cpu_limit_cores, cpu, "{id}");
        assert_eq!(step.rate_rps(), rate, "{id}");
        assert_eq!(step.load.duration(), Duration::from_secs(secs), "{id}");
        assert_eq!(step.requests(), requests, "{id}");
        assert_eq!(step.topology.store, Store::Redis, "{id}");
        assert_eq!(step.load.arrival, Arrival::Uniform, "{id}");
        assert_eq!(step.warmup, Duration::from_secs(2), "{id}");
        assert_eq!(step.pause_after, Duration::from_secs(2), "{id}");
        assert_eq!(step.limits.timeout, Duration::from_secs(10), "{id}");
    }
    let names: Vec<&str> = plan.campaigns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert_eq!(plan.steps[0].name, "r1-cpu1-1000rps-10s-pass1");
    assert_eq!(plan.steps[8].name, "r2-cpu1.5-250rps-10s");
    assert_eq!(plan.steps[18].name, "r2-nolimit-500rps-10m");
    assert_eq!(plan.counter.site(), Some("td4"));
    let Target::Local(svc) = &plan.target else {
        panic!("td4 runs local replicas")
    };
    assert_eq!(svc.cost, Duration::from_micros(5500));
    assert_eq!(svc.sites, ["td4"]);
    let req = &plan.steps[0].request;
    assert_eq!(req.method, hyper::Method::POST);
    assert_eq!(req.path, "/api/clicks");
    assert!(req
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v == "application/json"));
    assert_eq!(&req.body[..], br#"{"site":"td4","url":"/page/{seq}"}"#);
    // The thresholds hold the original's 100 % steps to >= 0.99 counted.
    assert_eq!(plan.thresholds.len(), 1);
    let t = &plan.thresholds[0];
    assert_eq!((t.metric.as_str(), t.min), ("counted_ratio", Some(0.99)));
    let held: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| t.applies_to(&s.id()))
        .map(|s| s.id().to_string())
        .collect();
    assert_eq!(held, ["A/r1-cpu1-100rps-10s", "A/r1-cpu1-180rps-10s"]);
    assert_eq!(plan.source.name, "td4");
    assert_eq!(plan.source.sha256.len(), 64);
    assert!(plan.source.text.contains("[[campaign]]"));
}

#[test]
fn smoke_is_short_and_covers_a_limit_and_redis_replicas() {
    let plan = Plan::load(&scenario_file("smoke.toml")).unwrap();
    assert!((2..=4).contains(&plan.steps.len()));
    assert!(
        plan.planned_duration() < Duration::from_secs(60),
        "{:?}",
        plan.planned_duration()
    );
    assert!(plan
        .steps
        .iter()
        .any(|s| s.topology.cpu_limit_cores.is_some()));
    assert!(plan
        .steps
        .iter()
        .any(|s| s.topology.replicas == 2 && s.topology.store == Store::Redis));
    assert!(matches!(plan.target, Target::Local(_)));
}

#[test]
fn full_fixture_applies_every_key() {
    let plan = Plan::load(&fixture("full.toml")).unwrap();
    let Target::Local(svc) = &plan.target else {
        panic!("local target")
    };
    assert_eq!(svc.cost, Duration::from_micros(2500));
    assert_eq!(svc.workers, Some(2));
    assert_eq!(svc.max_inflight, Some(64));
    assert_eq!(svc.extra_args, ["--log", "warn"]);
    assert_eq!(
        svc.binary.as_deref(),
        Some(fixture("bin/polymetrie").as_path()),
        "binary is relative to the scenario file"
    );
    assert_eq!(plan.counter.site(), Some("b"));
    assert_eq!(
        plan.prometheus,
        Some(PrometheusMode::Url("http://127.0.0.1:9090".into()))
    );
    assert!(plan.promql["counter_increase"].contains("increase("));

    let ramp = &plan.steps[0];
    assert_eq!(ramp.id(), "explicit/ramp");
    assert_eq!(ramp.load.stages.len(), 1);
    assert_eq!(
        (ramp.load.stages[0].from_rps, ramp.load.stages[0].to_rps),
        (10.0, 30.0)
    );
    assert_eq!(ramp.requests(), 200);
    assert_eq!(ramp.topology.cpu_limit_cores, Some(0.25));
    assert_eq!(ramp.topology.store, Store::Redis, "[defaults].store");
    assert_eq!(
        ramp.limits.timeout,
        Duration::from_secs(7),
        "campaign override"
    );
    assert_eq!(ramp.load.arrival, Arrival::Uniform, "campaign override");
    assert_eq!(ramp.limits.max_in_flight, 500);
    assert_eq!(ramp.limits.connections, Some(8));
    assert_eq!(ramp.warmup, Duration::from_secs(1));
    assert_eq!(ramp.pause_after, Duration::from_millis(500));
    assert_eq!(ramp.request.method, hyper::Method::PUT);
    assert_eq!(&ramp.request.body[..], br#"{"site":"b","url":"/p/{seq}"}"#);
    assert_eq!(ramp.request.headers.len(), 2);

    // Rate derived from requests / duration; step store beats [defaults].
    let derived = &plan.steps[1];
    assert_eq!(derived.name, "r3-nolimit-30rps-3s");
    assert_eq!(derived.rate_rps(), 30.0);
    assert_eq!(derived.topology.store, Store::Memory);

    // Matrix: replicas, then cpu_limit, then rate, then duration (innermost), lists in the
    // order written; defaults of the scenario with the campaign's overrides.
    let matrix: Vec<&str> = plan.steps[2..].iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        matrix,
        [
            "r2-cpu1-100rps-2s",
            "r2-cpu1-100rps-1m",
            "r2-cpu1-50rps-2s",
            "r2-cpu1-50rps-1m",
            "r2-nolimit-100rps-2s",
            "r2-nolimit-100rps-1m",
            "r2-nolimit-50rps-2s",
            "r2-nolimit-50rps-1m",
            "r1-cpu1-100rps-2s",
            "r1-cpu1-100rps-1m",
            "r1-cpu1-50rps-2s",
            "r1-cpu1-50rps-1m",
            "r1-nolimit-100rps-2s",
            "r1-nolimit-100rps-1m",
            "r1-nolimit-50rps-2s",
            "r1-nolimit-50rps-1m",
        ]
    );
    let m = &plan.steps[2];
    assert_eq!(m.warmup, Duration::ZERO);
    assert_eq!(m.limits.timeout, Duration::from_secs(3));
    // Poisson seeds differ per step and follow the plan order from [defaults].seed.
    assert_eq!(m.load.arrival, Arrival::Poisson { seed: 42 });
    assert_eq!(plan.steps[3].load.arrival, Arrival::Poisson { seed: 43 });
}

#[test]
fn scale_time_shrinks_durations_and_keeps_rates() {
    let mut plan = Plan::load(&scenario_file("td4.toml")).unwrap();
    let before = plan.clone();
    plan.scale_time(0.1);
    for (a, b) in before.steps.iter().zip(&plan.steps) {
        assert_eq!(b.rate_rps(), a.rate_rps(), "{}", a.id());
        assert_eq!(b.load.duration(), a.load.duration().mul_f64(0.1));
        assert_eq!(b.warmup, a.warmup.mul_f64(0.1));
        assert_eq!(b.pause_after, a.pause_after.mul_f64(0.1));
        assert_eq!(
            b.limits.timeout, a.limits.timeout,
            "timeouts are about the service, not the plan"
        );
    }
    assert_eq!(plan.steps[0].load.duration(), Duration::from_secs(1));
    assert_eq!(plan.steps[0].requests(), 1000);
    assert!(loadgen::plan::check_time_scale(0.0).is_err());
    assert!(loadgen::plan::check_time_scale(f64::NAN).is_err());
    assert_eq!(loadgen::plan::check_time_scale(0.5).unwrap(), 0.5);
}

#[test]
fn select_steps_filters_by_campaign_glob_and_name() {
    let load = || Plan::load(&scenario_file("td4.toml")).unwrap();

    let mut plan = load();
    plan.select_steps("A/*").unwrap();
    assert_eq!(plan.steps.len(), 9);
    assert_eq!(
        plan.campaigns.len(),
        1,
        "campaigns without steps are dropped"
    );

    let mut plan = load();
    plan.select_steps("B/r2-*, C/r1-nolimit-500rps-10m")
        .unwrap();
    let ids: Vec<String> = plan.steps.iter().map(|s| s.id().to_string()).collect();
    assert_eq!(
        ids,
        [
            "B/r2-nolimit-180rps-30s",
            "B/r2-nolimit-300rps-30s",
            "B/r2-nolimit-1500rps-30s",
            "C/r1-nolimit-500rps-10m"
        ]
    );

    // A bare name matches in every campaign; plan order is kept.
    let mut plan = load();
    plan.select_steps("*-pass2,r1-cpu1-100rps-10s").unwrap();
    let ids: Vec<String> = plan.steps.iter().map(|s| s.id().to_string()).collect();
    assert_eq!(ids, ["A/r1-cpu1-1000rps-10s-pass2", "A/r1-cpu1-100rps-10s"]);

    let mut plan = load();
    let err = plan.select_steps("D/*").unwrap_err();
    assert!(matches!(err, ScenarioError::NoStepMatches { .. }));
    assert!(err.to_string().contains("'D/*'"), "{err}");
    assert_eq!(
        plan.steps.len(),
        19,
        "a failed selection leaves the plan alone"
    );
}
