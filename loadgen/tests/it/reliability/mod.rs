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

use loadgen_model::result::{CampaignResult, CheckName, Finding, RunStatus, Severity, StepResult};
use rustix::process::Signal;

use crate::common::command::{assert_exit, assert_exit_or_lagged};
use crate::common::run::{
    assert_nothing_left, cmdlines_containing, marker, read_run, run_command, scenario,
    scenario_with, tempdir, Leftovers, Running, POLL,
};
use crate::common::{self, external, polymetrie::Polymetrie, procs};

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
    assert_exit_or_lagged(&o, 0);

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

mod exits;
mod orphans;
mod signals;
