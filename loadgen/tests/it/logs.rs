//! `loadgen run --log-format json` end to end, against a real `polymetrie`: every stderr line
//! is one JSON object with `time`, `level`, `message` and `target`; the step's events carry
//! `step`; progress comes at most once a second; the step_finished numbers are run.json's; the
//! tables on stdout stay as they are.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::common::polymetrie::{saved_run, Polymetrie};
use crate::common::serial;
use loadgen_model::result::RunStatus;

/// One stderr line as an object with the stable keys; panics naming the line otherwise.
fn parse(line: &str) -> Map<String, Value> {
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) else {
        panic!("not one JSON object: {line:?}");
    };
    for key in ["time", "level", "message", "target"] {
        assert!(m.get(key).is_some_and(Value::is_string), "{key} in {line}");
    }
    assert!(
        ["error", "warn", "info", "debug", "trace"].contains(&m["level"].as_str().unwrap()),
        "{line}"
    );
    m
}

fn time_of(line: &Map<String, Value>) -> SystemTime {
    humantime::parse_rfc3339(line["time"].as_str().unwrap()).expect("RFC 3339 time")
}

#[test]
fn a_run_logs_json_lines_whose_step_numbers_are_run_json_s() {
    let _serial = serial::lock_blocking();
    let Some(svc) = Polymetrie::start(&["--sites", "s"]) else {
        return;
    };
    // A 2.5 s step: progress lines at most once a second are visible.
    let one = svc.run_one_step("logs", "2500ms", &["--log-format", "json"]);
    let out_dir = one.out_dir();
    let run = one.output;
    let stderr = String::from_utf8(run.stderr).unwrap();
    let saved = saved_run(&out_dir);
    assert_eq!(saved.status, RunStatus::Completed, "{stderr}");
    let step = &saved.steps[0];
    // Whether one late send of 100 made the step invalid is the host's business (exit 1, its
    // reason saved and logged); that the log says what run.json says is the subject here.
    match run.status.code() {
        Some(0) => assert!(step.valid),
        Some(1) => assert!(!step.valid, "{stderr}"),
        other => panic!("exit {other:?}:\n{stderr}"),
    }
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(
        stdout.contains("| step "),
        "the table stays on stdout: {stdout}"
    );

    let lines: Vec<Map<String, Value>> = stderr.lines().map(parse).collect();
    let of = |kind: &str| -> Vec<&Map<String, Value>> {
        lines.iter().filter(|l| l["event"] == kind).collect()
    };
    for kind in ["step_started", "progress", "step_finished"] {
        assert!(!of(kind).is_empty(), "no {kind} in\n{stderr}");
        for l in of(kind) {
            assert_eq!(l["step"], "c/s1", "{kind}: {l:?}");
        }
    }
    assert_eq!(of("run_ended")[0]["status"], "completed");
    assert_eq!(
        of("results")[0]["path"],
        out_dir.join("run.json").to_str().unwrap()
    );
    assert_eq!(of("report").len(), 1, "{stderr}");
    if run.status.code() == Some(1) {
        assert_eq!(of("exit_reasons")[0]["level"], "warn", "{stderr}");
    }

    // At most one progress line a second (a terminal redraws four).
    let progress: Vec<SystemTime> = of("progress").into_iter().map(time_of).collect();
    for pair in progress.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap();
        assert!(
            gap >= Duration::from_secs(1),
            "{gap:?} between progress lines:\n{stderr}"
        );
    }

    let finished = of("step_finished");
    assert_eq!(finished.len(), 1);
    let f = finished[0];
    let want: HashMap<&str, Value> = HashMap::from([
        ("intended", step.intended.into()),
        ("sent", step.sent.into()),
        ("ok", step.ok.into()),
        ("failed", step.failed.into()),
        ("dropped", step.dropped.into()),
        ("rate_rps", step.rate_rps.into()),
        ("success_ratio", step.success_ratio.into()),
        ("counted_ratio", step.counted_ratio.into()),
        ("p99_ms", step.latency_ms.p99.into()),
        ("valid", step.valid.into()),
        ("invalid_reason", step.invalid_reason.clone().into()),
        // Not measured for a URL target: null, never 0.
        ("cpu_cores_used", Value::Null),
    ]);
    for (key, value) in want {
        assert_eq!(f[key], value, "{key} in {f:?}");
    }
    assert_eq!(
        f["level"],
        if step.valid { "info" } else { "warn" },
        "{f:?}"
    );
    drop(svc);
}
