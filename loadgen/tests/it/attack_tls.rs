//! `loadgen attack https://…` as a user runs it, against Debian's nginx with certificates the
//! test makes (loadgen-testkit's `pki` and `nginx`): `--json` reconciles with nginx's access
//! log and carries the handshakes; a wrong CA is one clear `TLS FAILED` line in the summary with
//! every request a TLS failure; `--insecure` is recorded in the JSON and printed loudly; mTLS
//! flags reach the engine; bad TLS input is one line and exit 2. Skips loudly without nginx,
//! fails under LOADGEN_REQUIRE_EXTERNAL=1.

use std::process::Output;

use loadgen_model::result::StepResult;
use loadgen_testkit::nginx::{self, Nginx};
use loadgen_testkit::pki::Pki;

use crate::common::{self, command};

/// `loadgen attack URL --rate 20 --duration 1s EXTRA…`.
fn attack(url: &str, extra: &[&str]) -> Output {
    command::loadgen_output(
        [
            &["attack", url, "--rate", "20", "--duration", "1s"][..],
            extra,
        ]
        .concat(),
    )
}

/// The step a `--json` attack printed; exit 0, or 1 only when the shared machine made the
/// step invalid (the generator's lag), never for anything TLS did.
fn step_of(out: &Output) -> StepResult {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0) | Some(1)),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    let s: StepResult = serde_json::from_slice(&out.stdout).expect("one StepResult");
    if out.status.code() == Some(1) {
        assert!(!s.valid, "exit 1 only for an invalid step: {stderr}");
    }
    assert_eq!(s.intended, 20);
    assert_eq!(s.intended, s.sent + s.dropped);
    assert_eq!(s.sent, s.ok + s.failed);
    s
}

fn https(pki: &Pki, client_ca: bool) -> Option<Nginx> {
    Nginx::start(&nginx::Config {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
        client_ca: client_ca.then(|| pki.ca.clone()),
        ..nginx::Config::default()
    })
}

#[test]
fn an_https_attack_reconciles_with_nginx_and_reports_its_handshakes() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("tls");
    let pki = Pki::generate(dir.path());
    let Some(n) = https(&pki, false) else {
        return;
    };
    let url = format!("https://localhost:{}/", n.addr.port());
    let ca = pki.ca.to_str().unwrap();
    let s = step_of(&attack(&url, &["--cacert", ca, "--json"]));
    assert_eq!(s.ok, 20, "{:?}", s.outcomes);
    assert_eq!(n.count(200, 20), 20, "nginx's own count");
    let tls = s.tls.expect("an https step has its tls summary");
    assert!(
        tls.handshakes >= 1 && tls.handshake_failures.is_empty(),
        "{tls:?}"
    );
    assert!(!tls.insecure && tls.resumption);
    // A plain step has none: the JSON of http:// is unchanged.
    let plain = Nginx::start(&nginx::Config::default());
    if let Some(p) = plain {
        let s = step_of(&attack(
            &format!("http://127.0.0.1:{}/", p.addr.port()),
            &["--json"],
        ));
        assert!(s.tls.is_none() && s.outcomes.tls.is_empty());
        assert_eq!(p.count(200, 20), s.ok as usize);
    }
}

#[test]
fn a_wrong_ca_is_one_clear_line_and_every_request_a_tls_failure() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("tls");
    let pki = Pki::generate(dir.path());
    let Some(n) = https(&pki, false) else {
        return;
    };
    let url = format!("https://localhost:{}/", n.addr.port());
    let other = pki.other_ca.to_str().unwrap();
    let out = attack(&url, &["--cacert", other]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let failed: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("TLS FAILED"))
        .collect();
    assert_eq!(failed.len(), 1, "one clear line:\n{stderr}");
    assert!(
        failed[0].contains("20x unknown_ca") && failed[0].contains("--cacert"),
        "{}",
        failed[0]
    );
    let s = step_of(&attack(&url, &["--cacert", other, "--json"]));
    assert_eq!(s.ok, 0);
    assert_eq!(
        s.outcomes.tls.get("unknown_ca"),
        Some(&s.sent),
        "{:?}",
        s.outcomes
    );
    assert_eq!(n.count(200, 0), 0, "nothing reached nginx's handler");
}

#[test]
fn insecure_is_recorded_in_the_result_and_printed_loudly() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("tls");
    let pki = Pki::generate(dir.path());
    let Some(n) = https(&pki, false) else {
        return;
    };
    let url = format!("https://127.0.0.1:{}/", n.addr.port());
    let out = attack(&url, &["--insecure"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with("INSECURE:")),
        "{stderr}"
    );
    let s = step_of(&attack(&url, &["--insecure", "--json"]));
    assert_eq!(s.ok, 20);
    assert!(s.tls.expect("tls summary").insecure);
    assert_eq!(n.count(200, 40), 40);
}

#[test]
fn mtls_flags_reach_the_server_and_resumption_can_be_turned_off() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("tls");
    let pki = Pki::generate(dir.path());
    let Some(n) = https(&pki, true) else {
        return;
    };
    let url = format!("https://localhost:{}/", n.addr.port());
    let (ca, cert, key) = (
        pki.ca.to_str().unwrap(),
        pki.client_cert.to_str().unwrap(),
        pki.client_key.to_str().unwrap(),
    );
    let s = step_of(&attack(
        &url,
        &[
            "--cacert",
            ca,
            "--cert",
            cert,
            "--key",
            key,
            "--tls-resume",
            "off",
            "--json",
        ],
    ));
    assert_eq!(s.ok, 20, "{:?}", s.outcomes);
    let tls = s.tls.unwrap();
    assert!(
        tls.client_cert && !tls.resumption && tls.resumed == 0,
        "{tls:?}"
    );
    let s = step_of(&attack(&url, &["--cacert", ca, "--json"]));
    assert_eq!((s.ok, s.outcomes.status.get("400")), (0, Some(&20)));
}

fn assert_bad_input(url: &str, extra: &[&str], needle: &str) {
    let out = attack(url, extra);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
    assert!(
        err.contains(needle),
        "{extra:?}: {err:?} should say {needle:?}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_tls_input_is_exit_2_before_any_request() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("tls");
    let pki = Pki::generate(dir.path());
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    // Nothing listens: the files are refused before the target is even probed.
    let url = format!("https://localhost:{}/", common::unused_port());
    let one_line = |extra: &[&str], needle: &str| {
        assert_bad_input(&url, extra, needle);
        let err = String::from_utf8_lossy(&attack(&url, extra).stderr).to_string();
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    };
    one_line(&["--cacert", garbage.to_str().unwrap()], "--cacert");
    one_line(&["--cacert", "/nonexistent/ca.pem"], "/nonexistent/ca.pem");
    one_line(
        &[
            "--cert",
            pki.client_cert.to_str().unwrap(),
            "--key",
            pki.server_key.to_str().unwrap(),
        ],
        "--cert",
    );
    let plain = format!("http://127.0.0.1:{}/", common::unused_port());
    one_line_plain(&plain);
    // clap's own refusal (several lines of usage) is still exit 2.
    assert_bad_input(&url, &["--key", pki.client_key.to_str().unwrap()], "--cert");
}

fn one_line_plain(plain: &str) {
    let out = attack(plain, &["--insecure"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("https://") && err.trim_end().lines().count() == 1,
        "{err}"
    );
}
