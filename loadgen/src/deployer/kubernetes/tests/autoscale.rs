//! Autoscale steps against the mock: the rollout goes to the step's minimum, loadgen's HPA is
//! applied as the attack starts (body, field manager) and sampled once a second, deleted before the next step deploys
//! and at restore; one a killed run left is deleted before the first step, while someone
//! else's HPA still refuses the run.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::mock::{status, Cluster, Shared};
use super::{deployer, topology, with_new_pods};
use crate::deployer::kubernetes::hpa;
use crate::plan::{Autoscale, Topology};

const BOUNDS: Autoscale = Autoscale {
    min_replicas: 1,
    max_replicas: 4,
    cpu_utilization_pct: 50,
};

fn autoscaled() -> Topology {
    Topology {
        autoscale: Some(BOUNDS),
        ..topology(1, Some(1.0))
    }
}

fn hpa_calls(c: &Cluster) -> Vec<String> {
    c.calls
        .iter()
        .filter(|x| x.uri.contains("/horizontalpodautoscalers/"))
        .map(|x| format!("{} {}", x.method, x.uri.split('?').next().unwrap()))
        .collect()
}

#[test]
fn the_hpa_body_targets_the_deployment_with_the_steps_bounds() {
    let body = hpa::apply_body("ns", "web", &BOUNDS);
    assert_eq!(body["metadata"]["name"], "loadgen-web");
    assert_eq!(
        body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "loadgen"
    );
    let spec = &body["spec"];
    assert_eq!(
        spec["scaleTargetRef"],
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" })
    );
    assert_eq!(
        (spec["minReplicas"].clone(), spec["maxReplicas"].clone()),
        (json!(1), json!(4))
    );
    assert_eq!(
        spec["metrics"][0]["resource"],
        json!({ "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 50 } })
    );
}

#[tokio::test]
async fn an_autoscale_step_applies_its_hpa_as_the_attack_starts_and_the_next_step_deletes_it() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    {
        let mut c = cluster.lock().unwrap();
        with_new_pods(&mut c, 1);
        c.rollouts.push_back(vec![status(2, 1, 1, 1, 0)]);
        c.rollouts.push_back(vec![status(3, 1, 1, 1, 0)]);
    }
    let mut d = deployer(&cluster);
    d.prepare(CancellationToken::new()).await.unwrap();
    let step = d.deploy(&autoscaled()).await.unwrap();
    {
        let c = cluster.lock().unwrap();
        // The Deployment starts from the HPA's minimum; the HPA waits for the attack.
        let applies: Vec<&super::mock::Call> = c.calls.iter().filter(|x| x.is_apply()).collect();
        assert_eq!(
            applies.last().unwrap().body.as_ref().unwrap()["spec"]["replicas"],
            1
        );
        assert!(c.hpas.is_empty());
    }
    let sampling = CancellationToken::new();
    let task = step
        .scale
        .clone()
        .expect("an autoscale step is sampled")
        .start(sampling.clone());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    sampling.cancel();
    let points = task.await.unwrap().unwrap();
    {
        let c = cluster.lock().unwrap();
        let apply = c.calls.iter().rfind(|x| x.is_apply()).unwrap();
        assert!(
            apply.uri.contains("/horizontalpodautoscalers/loadgen-web"),
            "{}",
            apply.uri
        );
        assert!(apply.uri.contains("fieldManager=loadgen") && apply.uri.contains("force=true"));
        assert_eq!(c.hpas.len(), 1);
    }
    // A sample at once and one a second later.
    let at: Vec<u32> = points.iter().map(|p| p.t_s).collect();
    assert_eq!(at, [0, 1], "{points:?}");
    assert_eq!(points[0].replicas, Some(1));
    // The mock's fresh HPA says desiredReplicas 0: not synced, so not a decision.
    assert_eq!(points[0].desired_replicas, None);
    // A fixed step next: the HPA goes first, or it would fight the replica count.
    d.deploy(&topology(1, Some(1.0))).await.unwrap();
    let c = cluster.lock().unwrap();
    assert!(c.hpas.is_empty());
    assert_eq!(
        hpa_calls(&c),
        [
            "PATCH /apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/loadgen-web",
            "GET /apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/loadgen-web",
            "GET /apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/loadgen-web",
            "DELETE /apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers/loadgen-web",
        ]
    );
}

#[tokio::test]
async fn restore_deletes_the_hpa_of_a_last_autoscale_step() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    {
        let mut c = cluster.lock().unwrap();
        with_new_pods(&mut c, 1);
        c.rollouts.push_back(vec![status(2, 1, 1, 1, 0)]);
    }
    let mut d = deployer(&cluster);
    d.prepare(CancellationToken::new()).await.unwrap();
    let step = d.deploy(&autoscaled()).await.unwrap();
    let sampling = CancellationToken::new();
    let task = step.scale.clone().unwrap().start(sampling.clone());
    sampling.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(cluster.lock().unwrap().hpas.len(), 1);
    assert!(d.restore().await.unwrap().is_some());
    let c = cluster.lock().unwrap();
    assert!(c.hpas.is_empty());
    assert_eq!(c.dep["spec"]["replicas"], 1);
}

#[tokio::test]
async fn a_killed_runs_hpa_is_deleted_before_the_first_step_and_said() {
    let cluster: Shared = Arc::new(Mutex::new(Cluster::new()));
    let left = hpa::apply_body("ns", "web", &BOUNDS);
    cluster.lock().unwrap().hpas.push(left);
    let mut d = deployer(&cluster);
    let notes = d.prepare(CancellationToken::new()).await.unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("loadgen-web") && notes[0].contains("deleted"),
        "{}",
        notes[0]
    );
    assert!(cluster.lock().unwrap().hpas.is_empty());
}
