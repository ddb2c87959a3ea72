//! Results out of a cluster: `loadgen run --print-run-json` prints run.json between marker
//! lines, and `loadgen report --from-log FILE|-` rebuilds the report from such a log — here
//! from a real run's output (a short run against a real polymetrie), as `kubectl logs` would
//! return it, plain and with `--timestamps` prefixes.

use std::io::Write as _;
use std::process::Stdio;

use crate::common::polymetrie::{saved_run, Polymetrie};
use crate::common::{self, command, serial};
use loadgen_model::result::{CampaignResult, RunStatus};

fn report_from_log(log: &str, out: &std::path::Path) -> std::process::Output {
    let mut child = command::loadgen()
        .args(["report", "--from-log", "-", "--out"])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(log.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_run_printed_to_its_log_is_rebuilt_into_the_same_report() {
    let _serial = serial::lock_blocking();
    let Some(svc) = Polymetrie::start(&["--sites", "s"]) else {
        return;
    };
    let one = svc.run_one_step("fromlog", "1s", &["--print-run-json"]);
    let out_dir = one.out_dir();
    let (run, dir) = (one.output, one.dir);
    // What is under test is the round trip, not the verdict: on a loaded CI machine one late
    // send of 40 can make the step invalid (exit 1, its reason saved). Whichever it is, the
    // report rebuilt from the log must judge the same and exit the same.
    let code = run.status.code();
    let log = String::from_utf8(run.stdout).unwrap();
    assert!(log.contains("--- loadgen run.json begin ---"), "{log}");
    let saved = saved_run(&out_dir);
    assert_eq!(saved.status, RunStatus::Completed);
    assert_eq!(saved.steps[0].ok, 40, "{:?}", saved.steps[0].outcomes);
    let step = &saved.steps[0];
    match code {
        Some(0) => assert!(step.valid),
        Some(1) => assert!(!step.valid && step.invalid_reason.is_some(), "{step:?}"),
        _ => panic!("{code:?}: {}", String::from_utf8_lossy(&run.stderr)),
    }

    // The log as `kubectl logs` gives it, and with `--timestamps` prefixes on every line.
    let stamped: String = log
        .lines()
        .map(|l| format!("2026-12-01T10:00:00.123456789Z {l}\n"))
        .collect();
    for (i, text) in [log.clone(), stamped].iter().enumerate() {
        let rebuilt = dir.path().join(format!("rebuilt{i}"));
        let out = report_from_log(text, &rebuilt);
        assert_eq!(
            out.status.code(),
            code,
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let back: CampaignResult =
            serde_json::from_str(&std::fs::read_to_string(rebuilt.join("run.json")).unwrap())
                .unwrap();
        // Judged again from the same measurements: the same run, finding for finding.
        assert_eq!(back, saved, "log {i}");
        for f in ["report.html", "steps.csv"] {
            common::golden::assert_same_file(&out_dir.join(f), &rebuilt.join(f));
        }
    }
}

#[test]
fn a_log_without_a_run_is_a_one_line_error() {
    let dir = common::tempdir("fromlog-bad");
    let cut = "--- loadgen run.json begin ---\n{\"schema_version\": 1,\n";
    for (log, needle) in [
        (
            "just some output\n",
            "no `--- loadgen run.json begin ---` line",
        ),
        (cut, "cut off"),
    ] {
        let out = report_from_log(log, &dir.path().join("x"));
        command::assert_exit(&out, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{err}");
    }
}
