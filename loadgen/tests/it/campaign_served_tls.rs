//! `tls = true` on the bundled polymetrie: loadgen makes the run's CA and a certificate for
//! the loopback address, starts each replica with `--tls-cert`/`--tls-key`, and the step's load
//! trusts that CA only. A TD4-style pair — the same rate and CPU quota, TLS off then on — must
//! both reconcile exactly with polymetrie's own counter, the TLS step must show its verified
//! handshakes, the plain one none, and the report must set the two side by side. Then HTTP/2:
//! `[target] http2 = true` starts polymetrie with `--http2`, and one connection carries the step
//! as h2 over TLS (ALPN) and as h2c. Real processes and cgroups; skips loudly without them,
//! fails instead under LOADGEN_REQUIRE_EXTERNAL=1.

use std::time::Duration;

use loadgen_model::result::{CampaignResult, StepResult};

use crate::common::run::{assert_nothing_left, marker, read_run, scenario_with, tempdir};
use crate::common::{self, command, external};

/// Bound on one run of this module (a few 2 s steps).
const RUN_BOUND: Duration = Duration::from_secs(120);

/// Runs `body` (campaigns) against polymetrie at 1 ms per click with `target` keys added to
/// `[target]`; returns the run, after checking it left nothing behind and every step
/// reconciled exactly.
fn run_reconciled(tag: &str, target: &str, body: &str) -> Option<CampaignResult> {
    if !external::cgroups_usable() {
        return None;
    }
    let dir = tempdir(tag);
    let site = marker(tag);
    let sc = scenario_with(dir.path(), &site, "1ms", "", body);
    let text = std::fs::read_to_string(&sc).unwrap();
    let text = text.replacen(
        "kind = \"local\"",
        &format!("kind = \"local\"\n{target}"),
        1,
    );
    std::fs::write(&sc, text).unwrap();
    let out = dir.path().join("out");
    let (o, pid) = common::run::run(&sc, &out, &[], RUN_BOUND);
    let r = read_run(&out);
    // A shared 2-core machine may make the generator's own schedule slip: that alone is
    // tolerated (and said), anything else must exit 0.
    command::assert_exit_or_lagged(&o, 0);
    for s in &r.steps {
        assert!(s.intended >= 150, "{}: intended {}", s.name, s.intended);
        assert_eq!(s.ok, s.intended, "{}: {:?}", s.name, s.outcomes);
        let delta = s.counter.as_ref().and_then(|c| c.delta);
        assert_eq!(delta, Some(s.ok as i64), "{}: counter delta vs ok", s.name);
    }
    assert_nothing_left(&site, pid);
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(
        html.contains("<section id=\"tls\">"),
        r.steps.iter().any(|s| s.tls.is_some()),
        "the report's TLS section is there exactly when a step spoke TLS"
    );
    Some(r)
}

/// A campaign `name` of one 2 s step at 100 req/s on one replica, served over the run's TLS
/// when `tls`, with `extra` keys in its step.
fn campaign(name: &str, tls: bool, extra: &str) -> String {
    format!(
        "[[campaign]]\nname = \"{name}\"\ntls = {tls}\n[[campaign.step]]\nname = \"s\"\n\
         rate = 100\nduration = \"2s\"\nreplicas = 1\n{extra}\n"
    )
}

fn step<'a>(r: &'a CampaignResult, campaign: &str) -> &'a StepResult {
    r.steps
        .iter()
        .find(|s| s.campaign.as_deref() == Some(campaign))
        .unwrap_or_else(|| panic!("no step of campaign {campaign}"))
}

#[test]
fn a_tls_on_off_pair_on_polymetrie_reconciles_and_shows_what_tls_cost() {
    let _serial = common::serial::lock_blocking();
    // The same step twice, TLS off then on.
    let limited = "cpu_limit = 0.5";
    let body = format!(
        "{}\n{}",
        campaign("plain", false, limited),
        campaign("tls", true, limited)
    );
    let Some(r) = run_reconciled("tls-pair", "", &body) else {
        return;
    };
    let plain = step(&r, "plain");
    assert!(
        plain.tls.is_none(),
        "the plain step shook hands: {:?}",
        plain.tls
    );
    assert!(!plain.topology.as_ref().unwrap().tls);
    let tls = step(&r, "tls");
    assert!(tls.topology.as_ref().unwrap().tls, "the TLS step is marked");
    let t = tls.tls.as_ref().expect("the TLS step's handshakes");
    assert!(
        t.handshakes >= 1 && t.handshake_failures.is_empty() && !t.insecure,
        "{t:?}"
    );
    assert!(
        t.roots.ends_with("ca.pem"),
        "the run's CA is trusted: {}",
        t.roots
    );
    assert!(
        !std::path::Path::new(&t.roots).exists(),
        "the run's TLS files outlived it: {}",
        t.roots
    );
    for s in [plain, tls] {
        let cpu = s.cpu.as_ref().and_then(|c| c.cores_used);
        assert!(cpu.is_some_and(|c| c > 0.0), "{}: CPU read {cpu:?}", s.name);
    }
}

#[test]
fn polymetrie_serves_a_step_as_h2_over_tls_and_as_h2c_on_one_connection() {
    let _serial = common::serial::lock_blocking();
    let body = format!(
        "{}\n{}",
        campaign("h2", true, ""),
        campaign("h2c", false, "")
    );
    let Some(r) = run_reconciled("h2", "http2 = true", &body) else {
        return;
    };
    for (name, tls) in [("h2", true), ("h2c", false)] {
        let s = step(&r, name);
        assert_eq!(
            s.generator.connections_opened,
            Some(1),
            "{name}: every stream on one connection"
        );
        assert_eq!(s.tls.is_some(), tls, "{name}: {:?}", s.tls);
    }
}

#[test]
fn two_shards_split_an_h2_over_tls_step_and_each_verifies_the_runs_ca() {
    let _serial = common::serial::lock_blocking();
    let body = campaign("sharded", true, "generators = 2");
    let Some(r) = run_reconciled("h2-shards", "http2 = true", &body) else {
        return;
    };
    let s = step(&r, "sharded");
    let sharding = s.sharding.as_ref().expect("a sharded step");
    assert_eq!(sharding.shards.len(), 2, "{sharding:?}");
    // Each shard is its own process: its own connection, its own verified handshake.
    assert_eq!(s.generator.connections_opened, Some(2));
    let t = s.tls.as_ref().expect("the shards' handshakes, summed");
    assert_eq!((t.handshakes, t.handshake_failures.len()), (2, 0), "{t:?}");
}
