//! `loadgen attack --http2` as a user runs it against Debian's nginx (`listen … http2`): over
//! https (ALPN h2) and as h2c on http, the JSON's OK count equals nginx's logged 200s, every one
//! logged as HTTP/2.0 on one connection; `--max-streams` without `--http2` or at 0 is bad input.
//! Skips loudly without nginx, fails under LOADGEN_REQUIRE_EXTERNAL=1.

use std::process::Output;

use loadgen_model::result::StepResult;
use loadgen_testkit::nginx::{self, Nginx};
use loadgen_testkit::pki::Pki;

use crate::common::{self, command};

fn attack(url: &str, extra: &[&str]) -> Output {
    command::loadgen_output(
        [
            &["attack", url, "--rate", "50", "--duration", "1s", "--http2"][..],
            extra,
        ]
        .concat(),
    )
}

/// The step of a `--json` run: exit 0, or 1 only for an invalid step (the shared machine).
fn step_of(out: &Output) -> StepResult {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{stderr}");
    let s: StepResult = serde_json::from_slice(&out.stdout).expect("one StepResult");
    assert!(out.status.code() == Some(0) || !s.valid, "{stderr}");
    assert_eq!((s.intended, s.sent + s.dropped), (50, 50));
    assert_eq!(s.sent, s.ok + s.failed);
    s
}

fn assert_h2(n: &Nginx, s: &StepResult) {
    assert_eq!(s.ok, 50, "{:?}", s.outcomes);
    assert_eq!(n.count(200, 50), 50, "nginx's own count");
    assert!(n.log_lines().iter().all(|l| l.contains(" HTTP/2.0 ")));
    assert_eq!(n.connections().len(), 1, "one connection, many streams");
    assert_eq!(s.generator.connections_opened, Some(1));
}

#[test]
fn http2_over_https_and_h2c_reconcile_with_nginx() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("h2");
    let pki = Pki::generate(dir.path());
    let Some(n) = Nginx::start(&nginx::Config {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
        http2: true,
        ..nginx::Config::default()
    }) else {
        return;
    };
    let url = format!("https://localhost:{}/", n.addr.port());
    let s = step_of(&attack(
        &url,
        &["--cacert", pki.ca.to_str().unwrap(), "--json"],
    ));
    assert_h2(&n, &s);
    assert_eq!(s.tls.expect("handshakes").handshakes, 1);

    let Some(n) = Nginx::start(&nginx::Config {
        http2: true,
        ..nginx::Config::default()
    }) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/", n.addr.port());
    let s = step_of(&attack(&url, &["--max-streams", "10", "--json"]));
    assert_h2(&n, &s);
    assert!(s.tls.is_none());
}

#[test]
fn max_streams_is_checked() {
    let _serial = common::serial::lock_blocking();
    let url = format!("http://127.0.0.1:{}/", common::unused_port());
    let out = attack(&url, &["--max-streams", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-streams"));
    let out = command::loadgen_output([
        "attack",
        &url,
        "--rate",
        "1",
        "--duration",
        "1s",
        "--max-streams",
        "4",
    ]);
    assert_eq!(out.status.code(), Some(2), "--max-streams needs --http2");
}
