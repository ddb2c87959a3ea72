//! `loadgen attack` as a user runs it: bad input is a one-line error and exit 2; a real run
//! against a real `polymetrie` child prints one StepResult JSON object with `--json`, or a
//! readable summary without it. Golden files: the JSON's shape (`attack-json-shape.txt`: every
//! key path and its JSON type) and the summary with its numbers normalised
//! (`attack-summary.txt`); values vary from run to run, their form must not.

use std::collections::BTreeMap;
use std::process::Output;

use loadgen_model::result::StepResult;

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
    // A shard of several needs the one start instant they share.
    let shard = [url, "--rate", "10", "--duration", "1s", "--shard", "1/3"];
    assert_bad_input(&shard, "--shard 1/3 needs --start-at");
    assert_bad_input(
        &[&shard[..], &["--start-at", "soon"]].concat(),
        "--start-at",
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

/// A value that was not measured is `null` (the StepResult contract), so `null` stands for any
/// scalar type in a shape: it is not a change of type.
const SCALARS: [&str; 3] = ["bool", "number", "string"];

/// Every key path of `v` (`$.latency_ms.p99`, `$.timeline[].t_s`, …) with the JSON type found
/// there. Array elements are merged under `[]`, so the shape does not depend on their number.
fn shape(v: &serde_json::Value) -> BTreeMap<String, String> {
    fn walk(v: &serde_json::Value, path: String, out: &mut BTreeMap<String, Vec<&'static str>>) {
        use serde_json::Value;
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(items) => {
                for item in items {
                    walk(item, format!("{path}[]"), out);
                }
                "array"
            }
            Value::Object(map) => {
                for (key, item) in map {
                    walk(item, format!("{path}.{key}"), out);
                }
                "object"
            }
        };
        let kinds = out.entry(path).or_default();
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let mut kinds = BTreeMap::new();
    walk(v, "$".into(), &mut kinds);
    kinds
        .into_iter()
        .map(|(path, mut k)| {
            if k.len() == 2 && k.contains(&"null") && k.iter().any(|t| SCALARS.contains(t)) {
                k.retain(|t| *t != "null");
            }
            k.sort_unstable();
            (path, k.join("|"))
        })
        .collect()
}

/// Where this run and the golden disagree only by `null` against a scalar type, the golden's
/// word is kept: that is a value measured in one run and not in the other.
fn keep_unmeasured_as_in(golden: &str, shape: &mut BTreeMap<String, String>) {
    for (path, want) in golden.lines().filter_map(|l| l.split_once(": ")) {
        if let Some(got) = shape.get_mut(path) {
            let pair = [got.as_str(), want];
            if pair.contains(&"null") && pair.iter().any(|t| SCALARS.contains(t)) {
                *got = want.to_string();
            }
        }
    }
}

/// The summary's form: every run of digits is `N`, and runs of spaces (column padding, which
/// follows the numbers' widths) are one space; indentation is kept.
fn normalise(summary: &str) -> String {
    let mut digits_as_n = String::with_capacity(summary.len());
    for c in summary.chars() {
        if !c.is_ascii_digit() {
            digits_as_n.push(c);
        } else if !digits_as_n.ends_with('N') {
            digits_as_n.push('N');
        }
    }
    digits_as_n
        .lines()
        .map(|l| {
            let body = l.trim_start();
            let indent = &l[..l.len() - body.len()];
            format!(
                "{indent}{}\n",
                body.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect()
}

/// What the summary ends with when the generator kept its schedule.
const VALID_VERDICT: &str = "  valid: the generator kept its schedule";

#[test]
fn json_output_has_the_golden_shape() {
    let _serial = common::serial::lock_blocking();
    let Some((_svc, url)) = demo_service() else {
        return;
    };
    // epoll asked for: the auto backend (and its fallback reason) depends on the machine.
    let out = attack(&[clicks(&url, "50", "POST"), vec!["--json", "--io", "epoll"]].concat());
    // 0 when the step is valid, 1 when the (shared, loaded) machine made it invalid.
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut shape = shape(&v);
    if let Some(golden) = common::golden::expected("attack-json-shape.txt") {
        keep_unmeasured_as_in(&golden, &mut shape);
    }
    let text: String = shape.iter().map(|(p, t)| format!("{p}: {t}\n")).collect();
    common::golden::assert_golden("attack-json-shape.txt", &text);
}

#[test]
fn summary_matches_golden_with_numbers_normalised() {
    let _serial = common::serial::lock_blocking();
    let Some((_svc, url)) = demo_service() else {
        return;
    };
    // epoll asked for: the auto backend (and its fallback reason) depends on the machine.
    let out = attack(&[clicks(&url, "50", "POST"), vec!["--io", "epoll"]].concat());
    let code = out.status.code();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(matches!(code, Some(0) | Some(1)), "{stderr}");
    assert!(out.stdout.is_empty(), "the summary goes to stderr");
    let mut summary = normalise(&stderr);
    if code == Some(1) {
        // The shared machine made the step invalid: the verdict says why, in a sentence of its
        // own; the rest of the summary must not change.
        let (rest, verdict) = summary.trim_end().rsplit_once('\n').unwrap();
        assert!(verdict.starts_with("  INVALID: "), "{stderr}");
        eprintln!("step invalid on this machine, verdict not compared: {verdict}");
        summary = format!("{rest}\n{VALID_VERDICT}\n");
    }
    common::golden::assert_golden("attack-summary.txt", &summary);
}

/// A generator shard (`--log-result`) whose step is invalid still exits 0: its validity is in
/// the result line the coordinator reads, not in an exit code that would fail its Job and make
/// the Job controller delete the sibling shards. Without `--log-result` the same step exits 1.
#[test]
fn a_shard_result_carries_its_invalidity_and_exits_0() {
    let _serial = common::serial::lock_blocking();
    // Accepts connections (the kernel's backlog) and never answers: with one request in flight
    // at most, the others are dropped, and a step with drops is invalid.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    let base = [
        url.as_str(),
        "--rate",
        "50",
        "--duration",
        "1s",
        "--timeout",
        "1s",
        "--max-in-flight",
        "1",
    ];
    let plain = attack(&base);
    assert_eq!(plain.status.code(), Some(1), "an invalid step exits 1");
    let shard = attack(&[&base[..], &["--log-result"]].concat());
    assert_eq!(
        shard.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&shard.stderr)
    );
    let stdout = String::from_utf8_lossy(&shard.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(loadgen_model::shard::RESULT_MARK))
        .expect("the marked result line");
    let result: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(result["valid"], false, "{result}");
}
