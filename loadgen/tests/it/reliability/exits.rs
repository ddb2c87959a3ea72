//! The exit-code contract: 0 for a clean run, 1 for an unevaluable threshold or an invalid
//! step, the same from `loadgen report`.

use super::*;

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

#[test]
fn only_a_step_late_for_its_schedule_is_the_exit_1_that_host_noise_may_explain() {
    let _serial = common::serial::lock_blocking();
    // One fixed connection to a service that takes 20 ms a click, 100 clicks due in 1 s: with a
    // fixed pool the wait for the connection is the generator's own limit, i.e. schedule lag.
    let Some(svc) = Polymetrie::start(&["--sites", "demo", "--cost", "20ms"]) else {
        return;
    };
    let dir = tempdir("exit-lagged");
    let sc = url_scenario(
        dir.path(),
        &svc,
        "demo",
        100,
        "[defaults]\nconnections = 1\n",
    );
    let out = dir.path().join("out");
    let (o, r) = assert_run_and_report_exit(&sc, &out, 1);
    let reason = r.steps[0].invalid_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("schedule lag p99"), "{reason}");
    let stderr = text(&o.stderr);
    assert!(stderr.contains(&reason), "{stderr}");
    // What the tests whose subject is not the generator's timing tolerate: this…
    common::command::assert_exit_unless_lagged(o.status.code(), &stderr, 0);
    // …and nothing else: not another reason, not another exit code.
    let dropped = stderr.replace(&reason, "generator dropped 3 of 100 due requests");
    for (code, err) in [
        (Some(1), dropped),
        (Some(2), stderr.clone()),
        (None, stderr),
    ] {
        let refused = std::panic::catch_unwind(|| {
            common::command::assert_exit_unless_lagged(code, &err, 0);
        });
        assert!(refused.is_err(), "tolerated exit {code:?}: {err}");
    }
}
