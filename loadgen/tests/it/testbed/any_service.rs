//! Any service on a cluster, not only polymetrie: Debian's Prometheus (a third-party server
//! nobody here wrote, no polymetrie metrics) as a Deployment on the testbed, loaded on
//! `/-/healthy` through its Service by a `kind = "kubernetes"` campaign whose counter is the
//! server's own `prometheus_http_requests_total`, read from each pod at `{pod_ip}`; the pod's
//! CPU comes from the resource metrics API (metrics-server), the one view that needs nothing
//! from the service, with its window stated.

use serde_json::json;

use super::campaign::run;
use super::testbed;
use crate::common::{self, external, serial};

fn manifests(ns: &str) -> String {
    let config = json!({ "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "prom-config", "namespace": ns },
        "data": { "prometheus.yml": "global:\n  scrape_interval: 1m\n" } });
    let labels = json!({ "app": "prom" });
    let deployment = json!({ "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "prom", "namespace": ns },
        "spec": { "replicas": 1, "selector": { "matchLabels": labels },
            "template": { "metadata": { "labels": labels }, "spec": {
                "automountServiceAccountToken": false,
                "containers": [{ "name": "prometheus", "image": "prometheus:2",
                    "args": ["--config.file=/etc/prometheus/prometheus.yml",
                             "--web.listen-address=0.0.0.0:9090",
                             "--storage.tsdb.path=/var/lib/prometheus/metrics2"],
                    "ports": [{ "name": "http", "containerPort": 9090 }],
                    "readinessProbe": { "httpGet": { "path": "/-/ready", "port": "http" },
                                        "periodSeconds": 2 },
                    "resources": { "requests": { "cpu": "500m" }, "limits": { "cpu": "500m" } },
                    "volumeMounts": [
                        { "name": "config", "mountPath": "/etc/prometheus" },
                        { "name": "data", "mountPath": "/var/lib/prometheus/metrics2" } ] }],
                "volumes": [ { "name": "config", "configMap": { "name": "prom-config" } },
                             { "name": "data", "emptyDir": {} } ] } } } });
    let service = json!({ "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "prom", "namespace": ns },
        "spec": { "selector": labels, "ports": [{ "port": 9090, "targetPort": "http" }] } });
    json!({ "apiVersion": "v1", "kind": "List", "items": [config, deployment, service] })
        .to_string()
}

fn scenario(ns: &str, ip: &str) -> String {
    format!(
        r#"name = "any-service-k8s"

[target]
kind = "kubernetes"
namespace = "{ns}"
deployment = "prom"
container = "prometheus"
service_url = "http://{ip}:9090"
metrics_port = 9090
allow_remote = true

[request]
path = "/-/healthy"

[counter]
metric = 'prometheus_http_requests_total{{handler="/-/healthy"}}'
metrics_url = "http://{{pod_ip}}:9090/metrics"

[defaults]
timeout = "3s"
warmup = "1s"

[[campaign]]
name = "P"

# Long enough for a metrics-server sample (10-s window) to lie wholly inside the step.
[[campaign.step]]
name = "r1-cpu0.5-200rps"
rate = 200
duration = "30s"
replicas = 1
cpu_limit = 0.5
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_third_party_server_on_the_cluster_gets_its_counter_and_cpu() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    external::binary("prometheus", "prometheus")
        .expect("the stand-in maps the prometheus image to it");
    let ns = bed.namespace("it-any-service");
    bed.kubectl_in(&["apply", "-f", "-"], Some(&manifests(&ns.name)));
    bed.kubectl(&[
        "-n",
        &ns.name,
        "rollout",
        "status",
        "deployment/prom",
        "--timeout=90s",
    ]);
    let dir = common::tempdir("testbed-any-service");
    let path = dir.path().join("prom.toml");
    std::fs::write(&path, scenario(&ns.name, &ns.cluster_ip("prom"))).unwrap();
    let (code, stderr, r) = run(&bed, dir.path(), &path).await;
    assert!(matches!(code, Some(0 | 1)), "{stderr}");
    let s = &r.steps[0];
    assert_eq!(s.intended, s.sent + s.dropped);
    let delta = s
        .counter
        .as_ref()
        .and_then(|c| c.delta)
        .expect("the server's own counter") as u64;
    assert!(
        s.ok > 0 && s.ok <= delta && delta <= s.sent,
        "ok {} delta {delta} sent {}",
        s.ok,
        s.sent
    );
    let cpu = s.cpu.as_ref().unwrap();
    let p = &cpu.per_replica[0];
    eprintln!("prometheus pod at 200 req/s: {p:?}");
    assert!(
        p.pod.as_deref().is_some_and(|n| n.starts_with("prom-")),
        "{p:?}"
    );
    assert!(
        p.from_service.is_none(),
        "Prometheus exports no polymetrie_cgroup_cpu_*"
    );
    let m = p
        .from_metrics_api
        .as_ref()
        .expect("a metrics-server sample inside the step");
    assert!(
        (9.0..=16.0).contains(&m.window_s),
        "metrics-server's window: {m:?}"
    );
    assert!(m.ended_s > m.window_s && m.ended_s <= 32.0, "{m:?}");
    assert!(
        m.cores_used > 0.0 && m.cores_used <= 0.6,
        "under its 0.5-core quota: {m:?}"
    );
    assert_eq!(p.cores_used, Some(m.cores_used));
    assert_eq!(cpu.cores_used, Some(m.cores_used));
}
