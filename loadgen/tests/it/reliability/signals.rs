//! SIGTERM once (an interrupted run or attack, saved) and twice (exit 130 at once), and
//! run.json read while the run goes on.

use super::*;

#[test]
fn sigterm_during_a_step_saves_an_interrupted_run_and_exits_1() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let dir = tempdir("term");
    let site = marker("term");
    let sc = scenario(dir.path(), &site, &long_campaign(50, None));
    let out = dir.path().join("out");
    let child = Running::spawn(run_command(&sc, &out, &[]));
    let pid = child.pid;
    child.replicas_serving(&site, 1);
    let t0 = Instant::now();
    child.signal(Signal::TERM);
    let o = child.finish(STOP_BOUND);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_exit(&o, 1);
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("interrupted: stopping the current step"),
        "{stderr}"
    );
    assert!(stderr.contains("  - the run was interrupted"), "{stderr}");

    let r = read_run(&out);
    assert_eq!(r.status, RunStatus::Interrupted);
    assert_eq!(raw_run(&out)["status"], "interrupted");
    assert_eq!(r.steps.len(), 1, "step 2 never started");
    let s = &r.steps[0];
    assert!(s.interrupted);
    assert!(s.intended > 0 && s.intended < 60 * 50, "{}", s.intended);
    assert_accounted(s);
    let csv = std::fs::read_to_string(out.join("steps.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        2,
        "header and the interrupted step:\n{csv}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Run INTERRUPTED"));
    assert_nothing_left(&site, pid);
}

#[test]
fn a_second_sigterm_exits_at_once_with_130() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let dir = tempdir("term2");
    let site = marker("termtwice");
    // A replica held to 0.1 core at 20 ms per click answers about five clicks a second, so
    // when the first signal ends the schedule, requests are still in flight and loadgen waits
    // for them (up to the 3 s timeout): the second signal always finds it still running.
    let sc = scenario_with(dir.path(), &site, "20ms", "", &long_campaign(20, Some(0.1)));
    let out = dir.path().join("out");
    let child = Running::spawn(run_command(&sc, &out, &[]));
    let pid = child.pid;
    let replicas = child.replicas_serving(&site, 1);
    // Exiting at once means without teardown: what it leaves is removed when this drops.
    let _leftovers = Leftovers {
        loadgen_pid: pid,
        pids: replicas,
        site: site.clone(),
    };
    child.signal(Signal::TERM);
    child.wait_for_stderr("interrupted: stopping the current step", STOP_BOUND);
    assert!(
        !child.exited(),
        "still draining when the second signal goes"
    );
    child.signal(Signal::TERM);
    let o = child.finish(STOP_BOUND);
    assert_exit(&o, 130);
    assert!(text(&o.stderr).contains("second interrupt: exiting without teardown"));
    // Cut before the end: the last run.json written is whole, and says the run was running.
    assert_eq!(read_run(&out).status, RunStatus::Running);
}

/// `loadgen attack` of the clicks of polymetrie's demo site at `svc`, 100 req/s for 60 s.
fn attack_command(svc: &Polymetrie) -> std::process::Command {
    let mut c = common::command::loadgen();
    c.args([
        "attack",
        &format!("http://{}/api/clicks", svc.addr),
        "--rate",
        "100",
        "--duration",
        "60s",
        "--method",
        "POST",
        "--header",
        "content-type: application/json",
        "--body",
        r#"{"site":"demo","url":"/p/{seq}"}"#,
        "--json",
    ]);
    c
}

#[test]
fn sigterm_during_an_attack_prints_the_interrupted_result_and_exits_1() {
    let _serial = common::serial::lock_blocking();
    let Some(svc) = Polymetrie::start(&["--sites", "demo", "--cost", "0"]) else {
        return;
    };
    let clicks = || {
        common::http::site_clicks_blocking(svc.addr, "demo", Duration::from_secs(5))
            .expect("stats readable")
    };
    let before = clicks();
    let child = Running::spawn(attack_command(&svc));
    let deadline = Instant::now() + STEP_BOUND;
    while clicks() == before {
        assert!(!child.exited(), "attack ended early:\n{}", child.stderr());
        assert!(Instant::now() < deadline, "no click arrived");
        std::thread::sleep(POLL);
    }
    let t0 = Instant::now();
    child.signal(Signal::TERM);
    let o = child.finish(STOP_BOUND);
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    assert_exit(&o, 1);
    let stdout = text(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["interrupted"], true, "{stdout}");
    let s: StepResult = serde_json::from_value(v).unwrap();
    assert!(s.intended > 0 && s.intended < 6000, "{}", s.intended);
    assert_accounted(&s);
    assert_eq!(clicks() - before, s.ok, "counter delta == ok");
    assert!(text(&o.stderr).contains("interrupted: waiting for requests in flight"));
}

#[test]
fn run_json_can_be_read_while_the_run_goes_on() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let dir = tempdir("live-json");
    let site = marker("livejson");
    let sc = scenario(
        dir.path(),
        &site,
        r#"
[[campaign]]
name = "live"
warmup = "0s"

[[campaign.step]]
name = "one"
rate = 20
duration = "2s"

[[campaign.step]]
name = "two"
rate = 20
duration = "2s"
"#,
    );
    let out = dir.path().join("out");
    let child = Running::spawn(run_command(&sc, &out, &[]));
    let pid = child.pid;
    // Every read while it runs is a whole run.json (written atomically); record what it says.
    let mut seen: Vec<(RunStatus, usize)> = Vec::new();
    let deadline = Instant::now() + RUN_BOUND;
    while !child.exited() {
        assert!(Instant::now() < deadline, "run never ended");
        if let Ok(text) = std::fs::read_to_string(out.join("run.json")) {
            let r: CampaignResult = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("run.json read mid-run does not parse: {e}"));
            let state = (r.status, r.steps.len());
            if seen.last() != Some(&state) {
                seen.push(state);
            }
        }
        std::thread::sleep(POLL);
    }
    let o = child.finish(STOP_BOUND);
    assert_exit_or_lagged(&o, 0);
    assert!(
        seen.contains(&(RunStatus::Running, 1)),
        "step 1 saved while running: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].1 <= w[1].1),
        "steps only ever added: {seen:?}"
    );
    let r = read_run(&out);
    assert_eq!((r.status, r.steps.len()), (RunStatus::Completed, 2));
    assert_eq!(raw_run(&out)["status"], "completed");
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    assert_nothing_left(&site, pid);
}
