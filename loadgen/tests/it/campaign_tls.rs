//! `loadgen run` on a scenario whose `[target] url` is `https://` with its `cacert`: the TLS
//! keys reach every step's engine (warm-up included), run.json's step carries the handshakes,
//! and its OK count equals what Debian's nginx logged. Skips loudly without nginx, fails under
//! LOADGEN_REQUIRE_EXTERNAL=1.

use loadgen_model::result::CampaignResult;
use loadgen_testkit::nginx::{self, Nginx};
use loadgen_testkit::pki::Pki;

use crate::common::{self, command};

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
    let scenario = dir.path().join("tls.toml");
    std::fs::write(
        &scenario,
        format!(
            "name = \"tls\"\n[target]\nkind = \"url\"\nurl = \"https://localhost:{}\"\n\
             cacert = \"ca.pem\"\n[request]\npath = \"/\"\n\
             [defaults]\nwarmup = \"0s\"\npause = \"0s\"\ntimeout = \"3s\"\n\
             [[campaign]]\nname = \"c\"\n[[campaign.step]]\nrate = 20\nduration = \"1s\"\n",
            n.addr.port()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = command::loadgen_output([
        "run".as_ref(),
        scenario.as_os_str(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ]);
    command::assert_exit_or_lagged(&out, 0);
    let run: CampaignResult =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let step = &run.steps[0];
    assert_eq!((step.intended, step.ok), (20, 20), "{:?}", step.outcomes);
    let tls = step.tls.as_ref().expect("the step's handshakes");
    assert!(
        tls.handshakes >= 1 && tls.handshake_failures.is_empty(),
        "{tls:?}"
    );
    assert_eq!(tls.roots, dir.path().join("ca.pem").display().to_string());
    assert_eq!(n.count(200, 20), 20, "nginx's own count");
}
