//! Reliability end-to-end: what `loadgen run` does when things die under it, and the exit-code
//! contract. Real processes only: a replica killed with SIGKILL mid-step (the step fails, the
//! verdict says the configuration crashed, the next step is deployed afresh or, with
//! `on_target_failure = "stop"`, the run ends), the managed Prometheus killed mid-run, SIGTERM
//! once (an interrupted run, saved) and twice (exit 130 at once), `run.json` read while the run
//! goes on, the orphans a `kill -9` of loadgen leaves swept and reported by the next run, and
//! exit 0 / 1 for a clean run, an unevaluable threshold and an invalid step. Every wait is on
//! the run's own output, its files or its process tree, and bounded; every process is ended by
//! pid. Skips loudly without polymetrie, Prometheus or writable cgroups, fails instead under
//! LOADGEN_REQUIRE_EXTERNAL=1.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use loadgen::result::{CampaignResult, CheckName, Finding, RunStatus, Severity, StepResult};
use rustix::process::Signal;

use crate::common::run::{
    assert_nothing_left, cmdlines_containing, marker, read_run, run_command, scenario,
    scenario_with, tempdir, Leftovers, Running, POLL,
};
use crate::common::{self, command::assert_exit, external, polymetrie::Polymetrie, procs};

/// Bound on any one run of this module (the longest plans about 15 s of load).
const RUN_BOUND: Duration = Duration::from_secs(180);
/// Bound on a step's announcement line (`[i/n] …`) after the previous event.
const STEP_BOUND: Duration = Duration::from_secs(60);
/// Bound on loadgen's exit once signalled: the current step's end, teardown, the report.
const STOP_BOUND: Duration = Duration::from_secs(30);

/// Local replicas need polymetrie, and the orphans and quotas of these tests need cgroups.
fn ready() -> bool {
    external::polymetrie().is_some() && external::cgroups_usable()
}

/// The findings of `step` with this check name.
fn findings<'a>(step: &'a StepResult, check: &CheckName) -> Vec<&'a Finding> {
    step.checks.iter().filter(|f| &f.check == check).collect()
}

/// The raw run.json, for what the file itself must say (key names and values).
fn raw_run(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every request accounted for: intended = sent + dropped, sent = ok + failed.
fn assert_accounted(s: &StepResult) {
    assert_eq!(s.intended, s.sent + s.dropped, "{}: intended", s.name);
    assert_eq!(s.sent, s.ok + s.failed, "{}: sent", s.name);
}

/// One campaign `crash`: step `killed` (1 replica, `secs` at 50 req/s) then step `after` (1
/// replica, 2 s at 20 req/s), no warm-up, so a replica's first click is the measured step's.
fn crash_campaign(secs: u32) -> String {
    format!(
        r#"
[[campaign]]
name = "crash"
warmup = "0s"

[[campaign.step]]
name = "killed"
rate = 50
duration = "{secs}s"
replicas = 1

[[campaign.step]]
name = "after"
rate = 20
duration = "2s"
replicas = 1
"#
    )
}

/// Starts the crash campaign, waits until its replica serves the measured step, and kills that
/// replica with SIGKILL (by the pid found as loadgen's child). Returns the run's output, the
/// loadgen pid and the replica's pid.
fn run_and_kill_the_replica(sc: &Path, out: &Path, site: &str) -> (Output, u32, u32) {
    let child = Running::spawn(run_command(sc, out, &[]));
    let pid = child.pid;
    child.wait_for_stderr("[1/2] crash/killed", STEP_BOUND);
    // Its 10th click (due 0.18 s into the step) is stored: the measured attack is under way.
    let replicas = child.replicas_serving(site, 10);
    assert_eq!(replicas.len(), 1, "one replica: {replicas:?}");
    let replica = replicas[0];
    common::run::signal(replica, Signal::KILL);
    (child.finish(RUN_BOUND), pid, replica)
}

#[test]
fn a_replica_killed_mid_step_fails_that_step_and_the_next_is_deployed_afresh() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let dir = tempdir("kill-replica");
    let site = marker("killrep");
    let sc = scenario_with(dir.path(), &site, "5.5ms", "", &crash_campaign(10));
    let out = dir.path().join("out");
    let (o, pid, replica) = run_and_kill_the_replica(&sc, &out, &site);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("Verdict:"))
        .unwrap_or_else(|| panic!("no verdict in {stdout}"))
        .to_string();
    // What a user sees, for the record (`--nocapture`).
    eprintln!(
        "exit code {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        o.status.code()
    );
    assert_exit(&o, 1);
    assert!(stderr.contains("exit 1 because:"), "{stderr}");
    assert!(
        stderr.contains("  - step crash/killed: the target failed during the step"),
        "{stderr}"
    );
    assert_nothing_left(&site, pid);

    let r = read_run(&out);
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.error);
    assert_eq!(r.steps.len(), 2, "the run went on after the crash");
    let (killed, after) = (&r.steps[0], &r.steps[1]);
    assert_eq!(raw_run(&out)["steps"][0]["target_failed"], true);
    assert!(killed.target_failed);
    // The schedule ran to its end; what the dead replica could not answer is counted as
    // failed, and its counter, unreadable, is unmeasured rather than zero.
    assert_eq!(killed.intended, 500);
    assert_accounted(killed);
    assert!(killed.failed > 0, "requests after the kill failed");
    assert_eq!(killed.counted_ratio, None);

    // Step 2 on a fresh deployment: it answers and counts, and nothing of step 1's crash
    // is carried over.
    assert!(stderr.contains("[2/2] crash/after"), "{stderr}");
    assert!(!after.target_failed);
    assert_eq!(raw_run(&out)["steps"][1]["target_failed"], false);
    assert!(findings(after, &CheckName::ReplicaExited).is_empty());
    assert_accounted(after);
    assert!(after.ok > 0, "the fresh replica answered");
    assert_eq!(
        after.counter.as_ref().and_then(|c| c.delta),
        Some(after.ok as i64),
        "the fresh replica counted what it answered"
    );
    assert!(verdict.contains("the configuration crashed at 50 req/s (crash/killed: "));

    // Which process died, how and when: in run.json, under the table, in the verdict, in the
    // exit reasons and in the report.
    let exited = findings(killed, &CheckName::ReplicaExited);
    assert_eq!(
        exited.len(),
        1,
        "one replica_exited finding: {:?}",
        killed.checks
    );
    let f = exited[0];
    assert_eq!(f.severity, Severity::Fail);
    let who = format!("replica 0 (pid {replica}) killed by signal 9 (SIGKILL) ");
    assert!(f.message.starts_with(&who), "{}", f.message);
    // "… X.Y s into the step": killed after its 10th click (≥ 0.18 s), within the 10 s.
    let at: f64 = f.message[who.len()..]
        .split_once(" s into the step")
        .and_then(|(x, _)| x.parse().ok())
        .unwrap_or_else(|| panic!("no 'X.Y s into the step' in {:?}", f.message));
    assert!((0.1..10.0).contains(&at), "{at} s into a 10 s step");
    assert!(
        stdout.contains(&format!("killed: [fail] replica_exited: {who}")),
        "{stdout}"
    );
    assert!(
        verdict.contains(&format!("(crash/killed: {who}")),
        "{verdict}"
    );
    assert!(
        stderr.contains(&format!("  - crash/killed: replica_exited: {who}")),
        "{stderr}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains(&who), "report.html names the killed replica");
}

#[test]
fn with_on_target_failure_stop_the_run_ends_after_the_crashed_step() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let dir = tempdir("kill-stop");
    let site = marker("killstop");
    let top = r#"on_target_failure = "stop""#;
    let sc = scenario_with(dir.path(), &site, "5.5ms", top, &crash_campaign(5));
    let out = dir.path().join("out");
    let (o, pid, _) = run_and_kill_the_replica(&sc, &out, &site);
    let stderr = text(&o.stderr);
    assert_exit(&o, 1);
    let r = read_run(&out);
    assert_eq!(r.steps.len(), 1, "step 2 did not run");
    assert!(r.steps[0].target_failed);
    let error = r.error.as_deref().unwrap_or_default();
    assert!(error.starts_with("stopped after crash/killed"), "{error}");
    assert!(!stderr.contains("[2/2]"), "{stderr}");
    assert!(stderr.contains("exit 1 because:"), "{stderr}");
    assert_nothing_left(&site, pid);
}

#[test]
fn a_managed_prometheus_killed_mid_run_leaves_later_steps_without_it_and_the_run_goes_on() {
    let _serial = common::serial::lock_blocking();
    if !ready() || external::binary("prometheus", "prometheus").is_none() {
        return;
    }
    let dir = tempdir("kill-prom");
    let site = marker("killprom");
    let sc = scenario(
        dir.path(),
        &site,
        r#"
[[campaign]]
name = "p"
warmup = "0s"

[[campaign.step]]
name = "one"
rate = 30
duration = "3s"

[[campaign.step]]
name = "two"
rate = 30
duration = "3s"
"#,
    );
    let out = dir.path().join("out");
    let child = Running::spawn(run_command(&sc, &out, &["--prometheus", "managed"]));
    let pid = child.pid;
    // Step 1 is saved (run.json is rewritten after every step), Prometheus still scraping.
    let deadline = Instant::now() + RUN_BOUND;
    while !out.join("run.json").exists() || read_run(&out).steps.is_empty() {
        assert!(!child.exited(), "loadgen ended early:\n{}", child.stderr());
        assert!(Instant::now() < deadline, "step 1 never saved");
        std::thread::sleep(POLL);
    }
    let prometheus: Vec<u32> = procs::children_named(pid, "prometheus")
        .into_iter()
        .filter(|&p| procs::cmdline(p).contains("--config.file="))
        .collect();
    assert_eq!(
        prometheus.len(),
        1,
        "the managed prometheus: {prometheus:?}"
    );
    common::run::signal(prometheus[0], Signal::KILL);
    let o = child.finish(RUN_BOUND);
    assert_exit(&o, 0);

    let r = read_run(&out);
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.steps.len(), 2);
    let (one, two) = (&r.steps[0], &r.steps[1]);
    assert!(
        one.prometheus.is_some(),
        "step 1 was seen: {:?}",
        one.checks
    );
    assert_eq!(
        raw_run(&out)["steps"][1]["prometheus"],
        serde_json::Value::Null
    );
    let warned = findings(two, &CheckName::Prometheus);
    assert!(
        !warned.is_empty() && warned.iter().all(|f| f.severity == Severity::Warn),
        "{:?}",
        two.checks
    );
    assert_accounted(two);
    assert!(two.ok > 0);
    assert!(!procs::alive(prometheus[0]));
    let storage = format!("loadgen-prometheus-{pid}-");
    assert!(cmdlines_containing(&storage).is_empty());
    assert_nothing_left(&site, pid);
}

/// One campaign `long` of two 60 s steps at `rate` with one replica (CPU limit `cpu` when
/// given), no warm-up: a signal always lands in step 1.
fn long_campaign(rate: u32, cpu: Option<f64>) -> String {
    let limit = cpu.map_or(String::new(), |c| format!("cpu_limit = {c}"));
    format!(
        r#"
[[campaign]]
name = "long"
warmup = "0s"

[[campaign.step]]
name = "one"
rate = {rate}
duration = "60s"
{limit}

[[campaign.step]]
name = "two"
rate = {rate}
duration = "60s"
"#
    )
}

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
    assert_exit(&o, 0);
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

#[test]
fn a_kill_9_of_loadgen_leaves_orphans_that_the_next_run_sweeps_and_reports() {
    let _serial = common::serial::lock_blocking();
    if !ready() {
        return;
    }
    let dir = tempdir("orphans");
    let site = marker("orphans");
    let sc = scenario(dir.path(), &site, &long_campaign(20, Some(0.5)));
    let out = dir.path().join("out");
    let child = Running::spawn(run_command(&sc, &out, &[]));
    let dead = child.pid;
    let replicas = child.replicas_serving(&site, 1);
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    let orphan = replicas[0];
    let _leftovers = Leftovers {
        loadgen_pid: dead,
        pids: replicas,
        site: site.clone(),
    };
    child.signal(Signal::KILL);
    // Reaped: the pid no longer runs, as the next run's sweep must see it.
    let o = child.finish(STOP_BOUND);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(9)
    );
    assert!(!procs::exists(dead));

    // What it left: its replica, still running, in its group under the cpu hierarchy.
    let group = format!("loadgen-{dead}-");
    assert!(procs::alive(orphan), "the orphan survives its loadgen");
    assert!(
        procs::cgroup_paths(orphan)
            .iter()
            .any(|p| p.contains(&group)),
        "{:?}",
        procs::cgroup_paths(orphan)
    );
    let groups = procs::cgroups_of(dead);
    assert!(
        groups
            .iter()
            .any(|g| g.starts_with("/sys/fs/cgroup/cpu/") && g.join("cgroup.procs").exists()),
        "{groups:?}"
    );

    let next_dir = tempdir("orphans-next");
    let next_site = marker("orphansnext");
    let next = scenario(
        next_dir.path(),
        &next_site,
        r#"
[[campaign]]
name = "next"
warmup = "0s"

[[campaign.step]]
rate = 20
duration = "1s"
"#,
    );
    let next_out = next_dir.path().join("out");
    let (o, next_pid) = common::run::run(&next, &next_out, &[], RUN_BOUND);
    assert_exit(&o, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs::alive(orphan) {
        assert!(Instant::now() < deadline, "orphan {orphan} still runs");
        std::thread::sleep(POLL);
    }
    assert!(
        procs::cgroups_of(dead).is_empty(),
        "{:?}",
        procs::cgroups_of(dead)
    );
    let r = read_run(&next_out);
    let swept: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.check == CheckName::OrphansSwept)
        .collect();
    assert!(
        swept.iter().any(|f| f.severity == Severity::Warn
            && f.message
                .contains(&format!("of loadgen pid {dead}, which no longer runs"))
            && f.message.contains(&format!("cgroup {group}"))
            && f.message.contains(&orphan.to_string())),
        "{:?}",
        r.findings
    );
    eprintln!("orphans_swept: {}", swept[0].message);
    assert_nothing_left(&next_site, next_pid);
}

/// A scenario of one 1 s step at `rate` against the running service at `svc` (`kind = "url"`),
/// posting clicks to its demo site, with `counter_site` and `extra` (defaults, thresholds).
fn url_scenario(
    dir: &Path,
    svc: &Polymetrie,
    counter_site: &str,
    rate: u32,
    extra: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"name = "exit"
counter_site = "{counter_site}"

[target]
kind = "url"
url = "http://{addr}"

[request]
method = "POST"
path = "/api/clicks"
headers = {{ "content-type" = "application/json" }}
body = '{{"site":"demo","url":"/x/{{seq}}"}}'

{extra}

[[campaign]]
name = "c"

[[campaign.step]]
name = "s"
rate = {rate}
duration = "1s"
"#,
        addr = svc.addr
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `scenario`, then `loadgen report` on what it saved: both must exit `code`.
fn assert_run_and_report_exit(scenario: &Path, out: &Path, code: i32) -> (Output, CampaignResult) {
    let (o, _) = common::run::run(scenario, out, &[], RUN_BOUND);
    assert_exit(&o, code);
    let rerender = out.join("again");
    let report = common::command::loadgen_output([
        "report".as_ref(),
        out.join("run.json").as_os_str(),
        "--out".as_ref(),
        rerender.as_os_str(),
    ]);
    assert_exit(&report, code);
    (o, read_run(out))
}

#[test]
fn exit_1_when_a_threshold_cannot_be_evaluated() {
    let _serial = common::serial::lock_blocking();
    let Some(svc) = Polymetrie::start(&["--sites", "demo", "--cost", "0"]) else {
        return;
    };
    let dir = tempdir("exit-unevaluated");
    // The counter of a site the service does not have cannot be read: counted_ratio is
    // unmeasured, and a gate that could not be evaluated has not held.
    let threshold = "[[thresholds]]\nmetric = \"counted_ratio\"\nmin = 0.99\n";
    let sc = url_scenario(dir.path(), &svc, "nosuchsite", 20, threshold);
    let out = dir.path().join("out");
    let (o, r) = assert_run_and_report_exit(&sc, &out, 1);
    let s = &r.steps[0];
    assert!(s.valid, "only the threshold fails: {:?}", s.invalid_reason);
    assert_eq!(s.counted_ratio, None);
    let f = r
        .findings
        .iter()
        .find(|f| f.check == CheckName::Threshold)
        .unwrap_or_else(|| panic!("{:?}", r.findings));
    assert_eq!(f.severity, Severity::Fail);
    assert!(
        f.message.ends_with("could not be evaluated: not measured"),
        "{}",
        f.message
    );
    let stderr = text(&o.stderr);
    assert!(stderr.contains("exit 1 because:"), "{stderr}");
    assert!(stderr.contains("could not be evaluated"), "{stderr}");
}

#[test]
fn exit_1_when_a_step_is_invalid() {
    let _serial = common::serial::lock_blocking();
    // 20 ms of CPU per click, one request in flight at a time, one due every 10 ms: about
    // half are dropped at the cap, and a step with drops is invalid.
    let Some(svc) = Polymetrie::start(&["--sites", "demo", "--cost", "20ms"]) else {
        return;
    };
    let dir = tempdir("exit-invalid");
    let sc = url_scenario(
        dir.path(),
        &svc,
        "demo",
        100,
        "[defaults]\nmax_in_flight = 1\n",
    );
    let out = dir.path().join("out");
    let (o, r) = assert_run_and_report_exit(&sc, &out, 1);
    let s = &r.steps[0];
    assert!(s.dropped > 0, "{s:?}");
    assert_accounted(s);
    assert!(!s.valid);
    let reason = s.invalid_reason.as_deref().unwrap_or_default();
    assert!(reason.contains("dropped"), "{reason}");
    let stderr = text(&o.stderr);
    assert!(stderr.contains("  - step c/s: invalid"), "{stderr}");
    // …saying why, not only that it is.
    assert!(stderr.contains(reason), "{stderr}");
}

#[test]
fn exit_0_when_every_step_is_valid_and_every_threshold_holds() {
    let _serial = common::serial::lock_blocking();
    let Some(svc) = Polymetrie::start(&["--sites", "demo", "--cost", "0"]) else {
        return;
    };
    let dir = tempdir("exit-clean");
    let thresholds = "[[thresholds]]\nmetric = \"dropped\"\nmax = 0\n\n\
                      [[thresholds]]\nmetric = \"counted_ratio\"\nmin = 0.5\n";
    let sc = url_scenario(dir.path(), &svc, "demo", 20, thresholds);
    let out = dir.path().join("out");
    let (o, r) = assert_run_and_report_exit(&sc, &out, 0);
    assert!(r.exit_reasons().is_empty(), "{:?}", r.exit_reasons());
    let s = &r.steps[0];
    assert!(s.valid && !s.target_failed);
    assert_accounted(s);
    assert_eq!(s.counter.as_ref().and_then(|c| c.delta), Some(s.ok as i64));
    assert!(!text(&o.stderr).contains("exit 1 because"));
}
