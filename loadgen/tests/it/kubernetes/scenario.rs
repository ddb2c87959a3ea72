//! The Kubernetes target's keys, checked offline by `loadgen validate`: every cluster scenario
//! of `k8s/loadgen/scenarios/` is accepted (it is the ConfigMap the Job mounts, the only copy),
//! `td4-k8s.toml` expands to TD4's 19 steps against the manifests' Deployment, and each
//! mistake is refused with its file, line, column and key.

use std::path::{Path, PathBuf};

use loadgen::plan::{Plan, Target};

use crate::common::{self, command};

fn cluster_scenarios() -> Vec<PathBuf> {
    let dir = common::repo_dir().join("k8s/loadgen/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in {}", dir.display());
    files
}

#[test]
fn validate_accepts_every_cluster_scenario() {
    for path in cluster_scenarios() {
        let out =
            command::loadgen_output(["validate".as_ref(), "--json".as_ref(), path.as_os_str()]);
        command::assert_exit(&out, 0);
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            !plan["steps"].as_array().unwrap().is_empty(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn td4_k8s_targets_the_manifests_deployment() {
    let path = common::repo_dir().join("k8s/loadgen/scenarios/td4-k8s.toml");
    let plan = Plan::load(&path).unwrap();
    let Target::Kubernetes(k) = &plan.target else {
        panic!("expected a kubernetes target, got {:?}", plan.target);
    };
    assert_eq!(k.namespace, "loadgen");
    assert_eq!(k.deployment, "polymetrie");
    assert_eq!(k.container, "polymetrie");
    assert_eq!(
        k.service_url,
        "http://polymetrie.loadgen.svc.cluster.local:8080"
    );
    assert_eq!(k.metrics_port, 8080);
    assert_eq!(plan.steps.len(), 19);
    assert_eq!(plan.counter.site(), Some("td4"));
    // A cluster Prometheus is asked cAdvisor's series of the target's container.
    let q = &plan.promql["throttled_ratio"];
    assert!(
        q.contains(r#"container_cpu_cfs_throttled_periods_total{container="polymetrie"}"#),
        "{q}"
    );
    let text = loadgen_validate_text(&path);
    assert!(
        text.contains("Deployment loadgen/polymetrie (container polymetrie)"),
        "{text}"
    );
}

fn loadgen_validate_text(path: &Path) -> String {
    let out = command::loadgen_output(["validate".as_ref(), path.as_os_str()]);
    command::assert_exit(&out, 0);
    String::from_utf8(out.stdout).unwrap()
}

const GOOD: &str = r#"name = "k"
counter_site = "s"

[target]
kind = "kubernetes"
namespace = "ns"
deployment = "web"
container = "app"
service_url = "http://127.0.0.1:8080"
metrics_port = 9090

[request]
path = "/"

[[campaign]]
name = "c"

[[campaign.step]]
rate = 10
duration = "1s"
"#;

/// The error for GOOD with `from` replaced by `to`.
fn error_of(from: &str, to: &str) -> String {
    let dir = common::tempdir("k8s-scenario");
    let path = dir.path().join("k.toml");
    assert!(GOOD.contains(from), "{from}");
    std::fs::write(&path, GOOD.replacen(from, to, 1)).unwrap();
    match Plan::load(&path) {
        Ok(_) => panic!("accepted with {to:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_cluster_target_expands() {
    let dir = common::tempdir("k8s-scenario");
    let path = dir.path().join("k.toml");
    std::fs::write(&path, GOOD).unwrap();
    let plan = Plan::load(&path).unwrap();
    assert!(matches!(plan.target, Target::Kubernetes(ref k) if k.metrics_port == 9090));
}

#[test]
fn cluster_target_mistakes_name_their_key() {
    let cases = [
        (
            "namespace = \"ns\"\n",
            "",
            "target.namespace",
            "required key",
        ),
        (
            "deployment = \"web\"",
            "deployment = \"Web_1\"",
            "target.deployment",
            "RFC 1123",
        ),
        (
            "container = \"app\"\n",
            "",
            "target.container",
            "required key",
        ),
        (
            "service_url = \"http://127.0.0.1:8080\"",
            "service_url = \"http://web.ns.svc:8080\"",
            "target.service_url",
            "expected a loopback URL",
        ),
        (
            "metrics_port = 9090",
            "metrics_port = 70000",
            "target.metrics_port",
            "1–65535",
        ),
        (
            "metrics_port = 9090\n",
            "",
            "target.metrics_port",
            "required key",
        ),
        ("counter_site = \"s\"\n", "", "counter_site", "required key"),
        (
            "metrics_port = 9090",
            "metrics_port = 9090\nurl = \"http://127.0.0.1:1\"",
            "target.url",
            "service_url",
        ),
        (
            "kind = \"kubernetes\"",
            "kind = \"url\"\nurl = \"http://127.0.0.1:1\"",
            "target.namespace",
            "only applies to kind = \"kubernetes\"",
        ),
    ];
    for (from, to, key, needle) in cases {
        let msg = error_of(from, to);
        assert!(msg.contains(&format!("key '{key}'")), "{to:?}: {msg}");
        assert!(msg.contains(needle), "{to:?}: {msg}");
    }
}

#[test]
fn a_remote_service_needs_the_opt_in() {
    let dir = common::tempdir("k8s-scenario");
    let path = dir.path().join("k.toml");
    let text = GOOD.replace(
        "service_url = \"http://127.0.0.1:8080\"",
        "service_url = \"http://web.ns.svc:8080\"\nallow_remote = true",
    );
    std::fs::write(&path, text).unwrap();
    assert!(Plan::load(&path).is_ok());
}

const AUTOSCALE: &str = "autoscale = { min = 1, max = 4, cpu_utilization = 50 }\ncpu_limit = 1";

#[test]
fn an_autoscale_step_starts_at_its_minimum_and_is_named_after_its_hpa() {
    let dir = common::tempdir("k8s-scenario");
    let path = dir.path().join("k.toml");
    let text = GOOD.replace(
        "duration = \"1s\"",
        &format!("duration = \"1s\"\n{AUTOSCALE}"),
    );
    std::fs::write(&path, text).unwrap();
    let plan = Plan::load(&path).unwrap();
    let t = &plan.steps[0].topology;
    let a = t.autoscale.expect("an autoscale step");
    assert_eq!(
        (a.min_replicas, a.max_replicas, a.cpu_utilization_pct),
        (1, 4, 50)
    );
    assert_eq!((t.replicas, t.cpu_limit_cores), (1, Some(1.0)));
    assert_eq!(plan.steps[0].name, "hpa1to4at50-cpu1-10rps-1s");
    // `validate` shows the HPA's range, not a fixed count.
    let text = loadgen_validate_text(&path);
    assert!(text.contains("1–4 (HPA 50 %)"), "{text}");
}

#[test]
fn autoscale_mistakes_name_their_key() {
    let with = |extra: &str| format!("duration = \"1s\"\n{extra}");
    let cases = [
        (
            with("autoscale = { min = 1, max = 4, cpu_utilization = 50 }"),
            "campaign.step.cpu_limit",
            "needs a CPU limit",
        ),
        (
            with(&format!("{AUTOSCALE}\nreplicas = 2")),
            "campaign.step.replicas",
            "chosen by its HPA",
        ),
        (
            with("autoscale = { min = 3, max = 2, cpu_utilization = 50 }\ncpu_limit = 1"),
            "campaign.step.autoscale.max",
            "expected max ≥ min (3), got 2",
        ),
        (
            with("autoscale = { min = 1, max = 2, cpu_utilization = 150 }\ncpu_limit = 1"),
            "campaign.step.autoscale.cpu_utilization",
            "from 1 to 100",
        ),
        (
            with("autoscale = { min = 1, max = 2, cpu = 50 }\ncpu_limit = 1"),
            "campaign.step.autoscale.cpu",
            "expected one of `min`, `max`, `cpu_utilization`",
        ),
    ];
    for (to, key, needle) in cases {
        let msg = error_of("duration = \"1s\"", &to);
        assert!(msg.contains(&format!("key '{key}'")), "{to:?}: {msg}");
        assert!(msg.contains(needle), "{to:?}: {msg}");
    }
}

#[test]
fn a_local_autoscale_step_is_refused_with_exit_2() {
    let dir = common::tempdir("k8s-scenario");
    let path = dir.path().join("local.toml");
    let text = format!(
        "name = \"l\"\ncounter_site = \"s\"\n[target]\nkind = \"local\"\n[service]\ncost = \"1ms\"\n\
         sites = [\"s\"]\n[request]\npath = \"/\"\n[[campaign]]\n\
         name = \"c\"\n[[campaign.step]]\nrate = 10\nduration = \"1s\"\n{AUTOSCALE}\n"
    );
    std::fs::write(&path, text).unwrap();
    let out = command::loadgen_output(["validate".as_ref(), path.as_os_str()]);
    command::assert_exit(&out, 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("local.toml:"), "{err}");
    assert!(err.contains("key 'campaign.step.autoscale'"), "{err}");
    assert!(err.contains("need [target] kind = \"kubernetes\""), "{err}");
}
