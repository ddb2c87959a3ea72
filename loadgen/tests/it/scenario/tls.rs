//! The TLS and HTTP/2 keys of `[target]`: an `https://` url with `cacert`, `insecure`, `cert`,
//! `key` and `tls_resume` expands into the plan (paths from the scenario's folder), and
//! `validate` refuses a CA file that does not parse, a key without its certificate, `insecure`
//! beside `cacert` and any TLS key on a plain url — each one line naming file:line:col and the
//! key, exit 2; `http2` and `max_streams` likewise.

use super::*;
use loadgen_testkit::pki::Pki;

/// A url scenario on `url` with `tls` lines added to `[target]`, in `dir`.
fn write(dir: &Path, url: &str, tls: &str) -> PathBuf {
    let path = dir.join("tls.toml");
    let text = format!(
        "name = \"tls\"\n\n[target]\nkind = \"url\"\nurl = \"{url}\"\n{tls}\n\
         [request]\npath = \"/\"\n[[campaign]]\nname = \"c\"\n[[campaign.step]]\nrate = 10\nduration = \"1s\"\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// `validate` exits 2 with one line `PATH:LINE:COL: key 'KEY': …NEEDLE…`.
fn assert_refused(path: &Path, line: usize, key: &str, needle: &str) {
    let out = validate(&[], path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    let at = format!("{}:{line}:", path.display());
    assert!(err.contains(&at), "{err:?} should point at {at}");
    assert!(
        err.contains(&format!("key '{key}'")),
        "{err:?} should name {key}"
    );
    assert!(err.contains(needle), "{err:?} should say {needle:?}");
}

#[test]
fn tls_keys_expand_from_the_scenario_folder() {
    let dir = tempfile::tempdir().unwrap();
    Pki::generate(dir.path());
    let path = write(
        dir.path(),
        "https://localhost:8443",
        "cacert = \"ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\"\ntls_resume = false",
    );
    let plan = Plan::load(&path).unwrap();
    assert_eq!(plan.tls.cacert, Some(dir.path().join("ca.pem")));
    assert_eq!(plan.tls.cert, Some(dir.path().join("client.pem")));
    assert_eq!(plan.tls.key, Some(dir.path().join("client.key")));
    assert!(!plan.tls.resume && !plan.tls.insecure);
    let Target::Url { base } = &plan.target else {
        panic!("a url target")
    };
    assert_eq!(base, "https://localhost:8443");
    // An http url has the default settings.
    let plain = write(dir.path(), "http://127.0.0.1:8080", "");
    assert!(Plan::load(&plain).unwrap().tls.is_default());
}

#[test]
fn bad_tls_keys_are_refused_at_their_key() {
    let _serial = common::serial::lock_blocking();
    let dir = tempfile::tempdir().unwrap();
    Pki::generate(dir.path());
    std::fs::write(
        dir.path().join("garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let https = "https://localhost:8443";
    // [target] starts on line 3; the url is line 5, the first TLS line 6.
    let p = write(dir.path(), https, "cacert = \"garbage.pem\"");
    assert_refused(&p, 6, "target.cacert", "does not parse");
    let p = write(dir.path(), https, "cacert = \"missing.pem\"");
    assert_refused(&p, 6, "target.cacert", "missing.pem");
    let p = write(
        dir.path(),
        https,
        "cacert = \"ca.pem\"\nkey = \"client.key\"",
    );
    assert_refused(&p, 7, "target.key", "needs its certificate");
    let p = write(dir.path(), https, "cacert = \"ca.pem\"\ninsecure = true");
    assert_refused(&p, 7, "target.insecure", "insecure");
    let p = write(dir.path(), "http://127.0.0.1:8080", "tls_resume = false");
    assert_refused(&p, 6, "target.tls_resume", "https://");
}

/// A cluster's Service over HTTPS: its TLS keys reach the plan like a url target's, and a file
/// key is refused where generator pods would have to read it (a sharded step).
#[test]
fn an_https_service_on_a_cluster_takes_the_tls_keys_but_not_files_for_pods() {
    let _serial = common::serial::lock_blocking();
    let dir = tempfile::tempdir().unwrap();
    Pki::generate(dir.path());
    let cluster = |generators: u32| {
        let p = dir.path().join(format!("k{generators}.toml"));
        std::fs::write(
            &p,
            format!(
                "name = \"k\"\n\n[target]\nkind = \"kubernetes\"\nnamespace = \"ns\"\n\
                 deployment = \"web\"\ncontainer = \"web\"\n\
                 service_url = \"https://localhost:8443\"\nmetrics_port = 9090\n\
                 cacert = \"ca.pem\"\n\n[generators]\ncount = {generators}\n\n\
                 [counter]\nmetric = \"requests_total\"\n\
                 metrics_url = \"http://{{pod_ip}}:9090/metrics\"\n\n[request]\npath = \"/\"\n\n\
                 [[campaign]]\nname = \"c\"\n[[campaign.step]]\nrate = 10\n\
                 duration = \"1s\"\nreplicas = 1\n"
            ),
        )
        .unwrap();
        p
    };
    let plan = Plan::load(&cluster(1)).unwrap();
    assert_eq!(plan.tls.cacert, Some(dir.path().join("ca.pem")));
    assert_refused(&cluster(2), 10, "target.cacert", "generator pods");
}

#[test]
fn http2_keys_expand_and_their_mistakes_are_named() {
    let _serial = common::serial::lock_blocking();
    let dir = tempfile::tempdir().unwrap();
    let plain = "http://127.0.0.1:8080";
    let p = write(dir.path(), plain, "http2 = true\nmax_streams = 8");
    let plan = Plan::load(&p).unwrap();
    assert_eq!(plan.http2, Some(loadgen_engine::Http2 { max_streams: 8 }));
    let p = write(dir.path(), plain, "http2 = true");
    assert_eq!(Plan::load(&p).unwrap().http2.unwrap().max_streams, 100);
    assert_eq!(
        Plan::load(&write(dir.path(), plain, "")).unwrap().http2,
        None
    );
    let p = write(dir.path(), plain, "max_streams = 8");
    assert_refused(&p, 6, "target.max_streams", "http2 = true");
    let p = write(dir.path(), plain, "http2 = true\nmax_streams = 0");
    assert_refused(&p, 7, "target.max_streams", ">= 1");
}
