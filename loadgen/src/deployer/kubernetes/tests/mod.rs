//! The deployer's call sequences against a `tower-test` mock API server ([`mock`]): the apply
//! body per topology, a rollout whose status is still the previous one, one that times out,
//! old-ReplicaSet pods ignored, the HPA refusal, and the original restored after a run that
//! succeeded, one whose steps failed and one stopped by a signal; an autoscale step's HPA in
//! [`autoscale`].

mod autoscale;
mod job;
mod mock;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::spec::{self, ContainerCpu, Shape, ORIGINAL_ANNOTATION};
use super::{KubeError, KubernetesDeployer};
use crate::plan::{KubernetesTarget, Store, Topology};
use mock::{pod, replica_set, status, Cluster, Shared};

/// A loopback listener standing for the Service (a step waits until it accepts connections);
/// it lives as long as the test process.
fn service_url() -> String {
    static SERVICE: std::sync::OnceLock<std::net::TcpListener> = std::sync::OnceLock::new();
    let l = SERVICE.get_or_init(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    format!("http://{}", l.local_addr().unwrap())
}

fn target() -> KubernetesTarget {
    KubernetesTarget {
        namespace: "ns".into(),
        deployment: "web".into(),
        container: "app".into(),
        service_url: service_url(),
        rollout_timeout: super::ROLLOUT_BOUND,
        metrics_port: 9100,
    }
}

fn topology(replicas: u32, cpu: Option<f64>) -> Topology {
    Topology {
        replicas,
        cpu_limit_cores: cpu,
        store: Store::Redis,
        autoscale: None,
        tls: false,
    }
}

fn original() -> Shape {
    Shape {
        container: "app".into(),
        replicas: 1,
        cpu: ContainerCpu {
            request: Some("500m".into()),
            limit: Some("1".into()),
        },
        owners: Vec::new(),
    }
}

fn deployer(cluster: &Shared) -> KubernetesDeployer {
    let (client, _task) = mock::client(cluster.clone());
    KubernetesDeployer::with_client(&target(), client)
        .with_rollout_bound(Duration::from_secs(5))
        .without_lease()
}

/// The cluster after an apply to `replicas`: the new ReplicaSet `new` (revision 2) with
/// `replicas` ready pods, and the old one's pods still there (one terminating).
fn with_new_pods(c: &mut Cluster, replicas: usize) {
    c.replica_sets.push(replica_set("new", "2"));
    c.pods
        .push(pod("web-old-a", "old", "10.0.0.1", true, false));
    c.pods.push(pod("web-old-b", "old", "10.0.0.2", true, true));
    c.pods.push(pod("web-new-x", "new", "10.0.0.9", true, true));
    c.pods
        .push(pod("web-new-y", "new", "10.0.0.8", false, false));
    for i in 0..replicas {
        c.pods.push(pod(
            &format!("web-new-{i}"),
            "new",
            &format!("10.0.1.{i}"),
            true,
            false,
        ));
    }
}

#[test]
fn the_apply_body_sets_replicas_and_cpu_request_equal_to_limit() {
    let limited = Shape::for_step(&topology(2, Some(1.5)), &original());
    let body = spec::apply_body("web", &limited, Some(&original()));
    assert_eq!(body["apiVersion"], "apps/v1");
    assert_eq!(body["kind"], "Deployment");
    assert_eq!(body["spec"]["replicas"], 2);
    let c = &body["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"], "app");
    assert_eq!(
        c["resources"],
        json!({ "requests": { "cpu": "1500m" }, "limits": { "cpu": "1500m" } })
    );
    let kept: Shape = serde_json::from_str(
        body["metadata"]["annotations"][ORIGINAL_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(kept, original());
    // No limit: the original request stays, and no limit is set (the fallback removes one
    // another manager holds).
    let unlimited = Shape::for_step(&topology(1, None), &original());
    let body = spec::apply_body("web", &unlimited, None);
    let c = &body["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"], json!({ "requests": { "cpu": "500m" } }));
    assert!(body["metadata"].get("annotations").is_none());
}

#[test]
fn only_ready_running_pods_of_the_new_replica_set_are_the_steps() {
    let mut c = Cluster::new();
    with_new_pods(&mut c, 2);
    let pods: Vec<k8s_openapi::api::core::v1::Pod> = c
        .pods
        .iter()
        .map(|p| serde_json::from_value(p.clone()).unwrap())
        .collect();
    let found = super::pods::step_pods(&pods, "new", 9100);
    let names: Vec<&str> = found.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-new-0", "web-new-1"]);
    assert_eq!(found[0].metrics_url, "http://10.0.1.0:9100");
    assert_eq!(found[0].node.as_deref(), Some("node-a"));
}

#[tokio::test]
async fn a_rollout_still_showing_the_previous_status_is_waited_for() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    {
        let mut c = cluster.lock().unwrap();
        with_new_pods(&mut c, 2);
        // After the apply (generation 2) the status still says generation 1, complete; then
        // the controller sees it and rolls out.
        c.rollouts
            .push_back(vec![status(1, 1, 1, 1, 0), status(2, 2, 1, 1, 1)]);
        c.rollouts
            .push_back(vec![status(2, 2, 2, 1, 1), status(2, 2, 2, 2, 0)]);
    }
    let mut d = deployer(&cluster);
    assert!(d
        .prepare(CancellationToken::new())
        .await
        .unwrap()
        .is_empty());
    let deployment = d.deploy(&topology(2, Some(1.0))).await.unwrap();
    let names: Vec<&str> = deployment.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-new-0", "web-new-1"]);
    assert_eq!(deployment.base_url, service_url());
    let c = cluster.lock().unwrap();
    // Both watches were needed: the first batch ended on a rollout still in progress.
    assert!(c.rollouts.is_empty());
    let watch = c
        .calls
        .iter()
        .find(|x| x.uri.contains("watch=true"))
        .unwrap();
    assert!(
        watch.uri.contains("fieldSelector=metadata.name%3Dweb"),
        "{}",
        watch.uri
    );
    // The first apply is the step's (the original is annotated by a merge patch).
    let apply = c.calls.iter().find(|x| x.is_apply()).unwrap();
    assert!(apply.uri.contains("fieldManager=loadgen") && apply.uri.contains("force=true"));
    assert_eq!(c.container()["resources"]["limits"]["cpu"], "1");
    assert_eq!(c.container()["resources"]["requests"]["cpu"], "1");
}

#[test]
fn the_previous_rollouts_status_is_not_complete() {
    let mut dep: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(Cluster::new().dep).unwrap();
    // Generation 2 patched, status of generation 1 fully rolled out at the old count.
    assert!(super::rollout::progress(&dep, 2, 1).is_err());
    dep.status = serde_json::from_value(status(2, 1, 1, 1, 0)).ok();
    assert!(super::rollout::progress(&dep, 2, 1).is_ok());
    dep.status = serde_json::from_value(status(2, 1, 1, 1, 1)).ok();
    assert!(
        super::rollout::progress(&dep, 2, 1).is_err(),
        "one unavailable"
    );
}

#[tokio::test]
async fn a_rollout_that_never_completes_times_out_naming_what_is_pending() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    cluster
        .lock()
        .unwrap()
        .rollouts
        .push_back(vec![status(2, 2, 1, 1, 1)]);
    let mut d = deployer(&cluster).with_rollout_bound(Duration::from_millis(800));
    d.prepare(CancellationToken::new()).await.unwrap();
    let err = d.deploy(&topology(2, Some(1.0))).await.unwrap_err();
    let KubeError::RolloutTimeout { state, .. } = &err else {
        panic!("expected a rollout timeout, got {err}");
    };
    assert!(state.contains("updatedReplicas 1"), "{state}");
    assert!(err.to_string().contains("800ms"), "{err}");
}

#[tokio::test]
async fn an_hpa_on_the_deployment_refuses_the_run_before_any_change() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    cluster.lock().unwrap().hpas.push(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "web-hpa", "namespace": "ns" },
        "spec": { "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                  "minReplicas": 1, "maxReplicas": 4 } }));
    let mut d = deployer(&cluster);
    let err = d.prepare(CancellationToken::new()).await.unwrap_err();
    assert!(
        matches!(&err, KubeError::Hpa { hpa, .. } if hpa == "web-hpa"),
        "{err}"
    );
    assert!(err.to_string().contains("web-hpa"));
    let c = cluster.lock().unwrap();
    assert!(
        c.calls.iter().all(|x| x.method != "PATCH"),
        "nothing may change"
    );
}

#[tokio::test]
async fn an_unlimited_step_removes_a_limit_another_manager_holds_and_restore_puts_it_back() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    {
        let mut c = cluster.lock().unwrap();
        with_new_pods(&mut c, 1);
        c.rollouts.push_back(vec![status(3, 1, 1, 1, 0)]);
    }
    let mut d = deployer(&cluster);
    d.prepare(CancellationToken::new()).await.unwrap();
    d.deploy(&topology(1, None)).await.unwrap();
    {
        let c = cluster.lock().unwrap();
        let res = &c.container()["resources"];
        assert!(res["limits"].get("cpu").is_none(), "{res}");
        assert_eq!(res["requests"]["cpu"], "500m");
        let strategic = c
            .calls
            .iter()
            .find(|x| x.method == "PATCH" && x.content_type.contains("strategic"))
            .expect("a strategic patch removing the limit");
        assert_eq!(
            strategic.content_type,
            "application/strategic-merge-patch+json"
        );
        assert!(c.dep["metadata"]["annotations"]
            .get(ORIGINAL_ANNOTATION)
            .is_some());
    }
    assert_eq!(d.restore().await.unwrap(), Some(original()));
    let c = cluster.lock().unwrap();
    let res = &c.container()["resources"];
    assert_eq!(res["limits"]["cpu"], "1");
    assert_eq!(c.dep["spec"]["replicas"], 1);
    assert!(c.dep["metadata"]["annotations"]
        .get(ORIGINAL_ANNOTATION)
        .is_none());
    let last = c.applies().pop().unwrap();
    assert!(last["metadata"].get("annotations").is_none(), "{last}");
}

#[tokio::test]
async fn a_killed_runs_annotation_is_the_original_the_next_run_restores() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    {
        let mut c = cluster.lock().unwrap();
        // A killed run left 3 replicas at 2 cores, and the real original in the annotation.
        c.dep["spec"]["replicas"] = json!(3);
        c.dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] =
            json!("2");
        c.dep["metadata"]["annotations"][ORIGINAL_ANNOTATION] =
            json!(serde_json::to_string(&original()).unwrap());
    }
    let mut d = deployer(&cluster);
    let notes = d.prepare(CancellationToken::new()).await.unwrap();
    assert_eq!(notes.len(), 1);
    assert!(notes[0].contains("could not restore it"), "{}", notes[0]);
    assert_eq!(d.original(), Some(&original()));
    // `loadgen restore` does the same without a run.
    let mut r = deployer(&cluster);
    assert_eq!(r.restore_kept().await.unwrap().0, Some(original()));
    let c = cluster.lock().unwrap();
    assert_eq!(c.dep["spec"]["replicas"], 1);
    assert_eq!(c.container()["resources"]["limits"]["cpu"], "1");
}

mod campaign;
