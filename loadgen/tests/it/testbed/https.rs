//! A cluster Service that speaks HTTPS: the repository's polymetrie Deployment, given a TLS
//! Secret (a certificate for its Service's address, from a CA the test makes) and told to
//! serve it on its main port, its probes and `/metrics` moved to the plain admin port — as an
//! Ingress or a TLS-terminating Service would be reached. A `kind = "kubernetes"` campaign with
//! `service_url = "https://…"` and `cacert` loads it through kube-proxy, every connection a
//! verified handshake, and reads polymetrie's counter through the same https Service: the
//! clicks reconcile exactly.

use std::path::Path;

use serde_json::json;

use super::campaign::run;
use super::{testbed, Namespace};
use crate::common::{self, serial};
use loadgen_testkit::pki::Pki;

/// The JSON patch that makes the Deployment serve `polymetrie-tls` on its main port and move
/// what must stay plain (the kubelet's probes, `/metrics`) to the admin listener on 9090.
fn tls_patch() -> String {
    let env = |name: &str, value: &str| json!({ "name": name, "value": value });
    let c = "/spec/template/spec/containers/0";
    json!([
        { "op": "add", "path": "/spec/template/spec/volumes/-",
          "value": { "name": "tls", "secret": { "secretName": "polymetrie-tls" } } },
        { "op": "add", "path": format!("{c}/volumeMounts/-"),
          "value": { "name": "tls", "mountPath": "/etc/polymetrie/tls", "readOnly": true } },
        { "op": "add", "path": format!("{c}/env/-"),
          "value": env("POLYMETRIE_TLS_CERT", "/etc/polymetrie/tls/tls.crt") },
        { "op": "add", "path": format!("{c}/env/-"),
          "value": env("POLYMETRIE_TLS_KEY", "/etc/polymetrie/tls/tls.key") },
        { "op": "add", "path": format!("{c}/env/-"),
          "value": env("POLYMETRIE_ADMIN_LISTEN", "0.0.0.0:9090") },
        { "op": "replace", "path": format!("{c}/readinessProbe/httpGet/port"), "value": 9090 },
        { "op": "replace", "path": format!("{c}/livenessProbe/httpGet/port"), "value": 9090 },
    ])
    .to_string()
}

/// polymetrie of `k8s/base`, serving the certificate of `dir`'s PKI for its Service's address.
fn deploy_tls(ns: &Namespace, dir: &Path) -> String {
    ns.deploy_base("1ms");
    let ip = ns.cluster_ip("polymetrie");
    let pki = Pki::generate_for(dir, &[ip.parse().expect("a Service IP")]);
    let (cert, key) = (pki.server_cert.display(), pki.server_key.display());
    ns.bed.kubectl(&[
        "-n",
        &ns.name,
        "create",
        "secret",
        "tls",
        "polymetrie-tls",
        &format!("--cert={cert}"),
        &format!("--key={key}"),
    ]);
    ns.bed.kubectl(&[
        "-n",
        &ns.name,
        "patch",
        "deployment",
        "polymetrie",
        "--type=json",
        "-p",
        &tls_patch(),
    ]);
    ns.wait_base();
    ip
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_loads_an_https_service_and_reads_its_counter_over_tls() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-https");
    let dir = common::tempdir("k8s-https");
    let ip = deploy_tls(&ns, dir.path());
    let scenario = dir.path().join("https.toml");
    let text = super::campaign::scenario(
        &ns,
        "[[campaign]]\nname = \"T\"\n[[campaign.step]]\nname = \"r1-100rps\"\n\
         rate = 100\nduration = \"3s\"\nreplicas = 1\n",
    )
    .replace(
        &format!("service_url = \"http://{ip}:8080\""),
        &format!("service_url = \"https://{ip}:8080\"\ncacert = \"ca.pem\""),
    )
    .replace("metrics_port = 8080", "metrics_port = 9090");
    assert!(text.contains("https://"), "{text}");
    std::fs::write(&scenario, text).unwrap();
    let (code, stderr, r) = run(&bed, dir.path(), &scenario).await;
    assert_eq!(code, Some(0), "{stderr}");
    let s = &r.steps[0];
    assert_eq!((s.intended, s.ok), (300, 300), "{:?}", s.outcomes);
    let t = s.tls.as_ref().expect("the step's handshakes");
    assert!(
        t.handshakes >= 1 && t.handshake_failures.is_empty() && !t.insecure,
        "{t:?}"
    );
    // polymetrie's counter, read through the https Service with the scenario's CA.
    let delta = s.counter.as_ref().and_then(|c| c.delta);
    assert_eq!(delta, Some(300), "{:?}", s.counter);
}
