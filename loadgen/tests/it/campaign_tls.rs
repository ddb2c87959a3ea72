//! `loadgen run` on a scenario whose `[target] url` is `https://` with its `cacert` (and, in
//! the second test, `http2 = true`): the keys reach every step's engine, run.json's step
//! carries the handshakes, and its OK count equals what Debian's nginx logged (every request
//! HTTP/2.0 with `http2`); and polymetrie's counter read through an https target over TLS.
//! Skips loudly without nginx, fails under LOADGEN_REQUIRE_EXTERNAL=1.

use loadgen_model::result::CampaignResult;
use loadgen_testkit::nginx::{self, Nginx};
use loadgen_testkit::pki::Pki;

use crate::common::{self, command};

/// Runs a one-step campaign (20 requests) against nginx at `port` with `extra` keys in
/// `[target]`; returns the step.
fn run_step(dir: &std::path::Path, port: u16, extra: &str) -> loadgen_model::result::StepResult {
    let step = run_scenario(
        dir,
        &format!(
            "name = \"tls\"\n[target]\nkind = \"url\"\nurl = \"https://localhost:{port}\"\n\
             cacert = \"ca.pem\"\n{extra}\n[request]\npath = \"/\"\n\
             [defaults]\nwarmup = \"0s\"\npause = \"0s\"\ntimeout = \"3s\"\n\
             [[campaign]]\nname = \"c\"\n[[campaign.step]]\nrate = 20\nduration = \"1s\"\n"
        ),
    );
    assert_eq!((step.intended, step.ok), (20, 20), "{:?}", step.outcomes);
    step
}

/// `loadgen run` of the scenario `text` (written into `dir`), which must exit 0 (or 1 for the
/// generator's schedule alone); returns its first step.
fn run_scenario(dir: &std::path::Path, text: &str) -> loadgen_model::result::StepResult {
    let scenario = dir.join("tls.toml");
    std::fs::write(&scenario, text).unwrap();
    let out_dir = dir.join("out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = command::loadgen_output([
        "run".as_ref(),
        scenario.as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ]);
    command::assert_exit_or_lagged(&out, 0);
    let run: CampaignResult =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    run.steps[0].clone()
}

#[test]
fn a_campaign_over_https_reconciles_with_nginx() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("tls-run");
    let pki = Pki::generate(dir.path());
    let Some(n) = Nginx::start(&nginx::Config {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
        ..nginx::Config::default()
    }) else {
        return;
    };
    let step = run_step(dir.path(), n.addr.port(), "");
    let tls = step.tls.as_ref().expect("the step's handshakes");
    assert!(
        tls.handshakes >= 1 && tls.handshake_failures.is_empty(),
        "{tls:?}"
    );
    assert_eq!(tls.roots, dir.path().join("ca.pem").display().to_string());
    assert_eq!(n.count(200, 20), 20, "nginx's own count");
}

#[test]
fn a_campaign_over_http2_reconciles_with_nginx() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("h2-run");
    let pki = Pki::generate(dir.path());
    let Some(n) = Nginx::start(&nginx::Config {
        tls: Some((pki.server_cert.clone(), pki.server_key.clone())),
        http2: true,
        ..nginx::Config::default()
    }) else {
        return;
    };
    let step = run_step(dir.path(), n.addr.port(), "http2 = true\nmax_streams = 10");
    assert_eq!(step.generator.connections_opened, Some(1));
    assert_eq!(n.count(200, 20), 20, "nginx's own count");
    assert!(n.log_lines().iter().all(|l| l.contains(" HTTP/2.0 ")));
}

/// polymetrie already running with TLS, as a `url` target: polymetrie's counter is read
/// through the service itself (`counter_site`), so the probe goes over HTTPS with the target's
/// `cacert`, and the click total it reads grows by exactly the step's OK count.
#[test]
fn the_counter_of_an_https_url_target_is_read_over_tls() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("tls-counter");
    let pki = Pki::generate(dir.path());
    let (cert, key) = (pki.server_cert.display(), pki.server_key.display());
    let Some(p) = crate::common::polymetrie::Polymetrie::start(&[
        "--sites",
        "s",
        "--tls-cert",
        &cert.to_string(),
        "--tls-key",
        &key.to_string(),
    ]) else {
        return;
    };
    let text = format!(
        "name = \"tls-counter\"\ncounter_site = \"s\"\n[target]\nkind = \"url\"\n\
         url = \"https://localhost:{}\"\ncacert = \"ca.pem\"\n[request]\nmethod = \"POST\"\n\
         path = \"/api/clicks\"\nheaders = {{ \"content-type\" = \"application/json\" }}\n\
         body = '{{\"site\":\"s\",\"url\":\"/p/{{seq}}\"}}'\n\
         [defaults]\nwarmup = \"0s\"\npause = \"0s\"\n[[campaign]]\nname = \"c\"\n\
         [[campaign.step]]\nrate = 50\nduration = \"1s\"\n",
        p.addr.port()
    );
    let step = &run_scenario(dir.path(), &text);
    assert_eq!((step.intended, step.ok), (50, 50), "{:?}", step.outcomes);
    let delta = step.counter.as_ref().and_then(|c| c.delta);
    assert_eq!(
        delta,
        Some(50),
        "the counter, read over TLS: {:?}",
        step.counter
    );
}
