//! `loadgen attack` as a user runs it: bad input is a one-line error and exit 2; a real run
//! against a real `polymetrie` child prints one StepResult JSON object with `--json`, or a
//! readable summary without it.

use std::process::Output;

use loadgen::result::StepResult;

use crate::common::{self, polymetrie::Polymetrie};

/// `loadgen attack ARGS`.
fn attack(args: &[&str]) -> Output {
    common::command::loadgen_output([&["attack"], args].concat())
}

/// The arguments of a click attack on polymetrie's demo site at `rate` for 1 s.
fn clicks<'a>(url: &'a str, rate: &'a str, method: &'a str) -> Vec<&'a str> {
    vec![
        url,
        "--rate",
        rate,
        "--duration",
        "1s",
        "--method",
        method,
        "--header",
        "content-type: application/json",
        "--body",
        r#"{"site":"demo","url":"/p/{seq}"}"#,
    ]
}

/// A polymetrie child with the demo site and no CPU cost per click, and its clicks URL.
fn demo_service() -> Option<(Polymetrie, String)> {
    let svc = Polymetrie::start(&["--sites", "demo", "--cost", "0"])?;
    let url = format!("http://{}/api/clicks", svc.addr);
    Some((svc, url))
}

fn assert_bad_input(args: &[&str], needle: &str) {
    let out = attack(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: stderr {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line, got {err:?}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: {err:?} should mention {needle:?}"
    );
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let _serial = common::serial::lock_blocking();
    let url = "http://127.0.0.1:9/x";
    assert_bad_input(&["not a url", "--rate", "10", "--duration", "1s"], "url");
    assert_bad_input(
        &["127.0.0.1:9/x", "--rate", "10", "--duration", "1s"],
        "bad target url",
    );
    assert_bad_input(&[url, "--rate", "0", "--duration", "1s"], "--rate");
    assert_bad_input(&[url, "--rate", "-5", "--duration", "1s"], "--rate");
    assert_bad_input(&[url, "--rate", "10", "--duration", "0s"], "--duration");
    assert_bad_input(&[url, "--rate", "10", "--duration", "soon"], "--duration");
    assert_bad_input(
        &[url, "--rate", "10", "--duration", "1s", "--timeout", "0s"],
        "--timeout",
    );
    assert_bad_input(
        &[
            url,
            "--rate",
            "10",
            "--duration",
            "1s",
            "--body",
            "@/nonexistent/body.json",
        ],
        "/nonexistent/body.json",
    );
    assert_bad_input(
        &[
            url,
            "--rate",
            "10",
            "--duration",
            "1s",
            "--header",
            "no-colon",
        ],
        "header",
    );
    assert_bad_input(
        &["http://10.9.8.7:80/", "--rate", "10", "--duration", "1s"],
        "not loopback",
    );
}

#[test]
fn an_unreachable_target_is_exit_2() {
    let _serial = common::serial::lock_blocking();
    let url = format!("http://127.0.0.1:{}/", common::unused_port());
    assert_bad_input(&[&url, "--rate", "10", "--duration", "1s"], "unreachable");
}

#[test]
fn json_output_is_one_step_result_that_reconciles() {
    let _serial = common::serial::lock_blocking();
    let Some((_svc, url)) = demo_service() else {
        return;
    };
    let out = attack(&[clicks(&url, "200", "post"), vec!["--json"]].concat());
    let code = out.status.code();
    // 0 when the step is valid, 1 when the (shared, loaded) machine made it invalid.
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.trim_end().lines().count(), 1, "one JSON line");
    let s: StepResult = serde_json::from_str(&stdout).unwrap();
    assert_eq!(s.intended, 200);
    assert_eq!(s.intended, s.sent + s.dropped);
    assert_eq!(s.sent, s.ok + s.failed);
    assert_eq!(s.ok, 200);
    assert_eq!(code == Some(0), s.valid);
    assert!(s.histogram.is_some());
    assert!(
        s.counter.is_none() && s.topology.is_none(),
        "generator fields only"
    );

    let out = attack(&[
        &url,
        "--rate",
        "50",
        "--duration",
        "200ms",
        "--method",
        "POST",
        "--body",
        r#"{"site":"nope","url":"/"}"#,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.stdout.is_empty());
    assert!(err.contains("latency (from due)"), "{err}");
    // Unknown site: every request is answered 404 (or 400), kept by exact code.
    assert!(err.contains("http 4"), "{err}");
}
