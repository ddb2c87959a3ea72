//! A scripted API server behind a `tower-test` mock client (the kube.rs testing guide): it
//! keeps one Deployment, its ReplicaSets, pods and the namespace's HPAs as JSON, answers the
//! calls the deployer makes, and records every call for the tests to assert on.
//!
//! Its apply merges like server-side apply does for fields another manager also holds (a CPU
//! field the body leaves out stays), a strategic-merge `null` deletes, and a watch streams the
//! next scripted batch of statuses — or, with none left, is held open unanswered, as a real
//! watch on a rollout that does not progress.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use hyper::{Request, Response};
use kube::client::Body;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower_test::mock::{self, Handle, SendResponse};

use crate::deployer::kubernetes::spec::ORIGINAL_ANNOTATION as ORIGINAL;

/// One call the deployer made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Path and query, e.g. `/apis/apps/v1/namespaces/ns/deployments/web?fieldManager=…`.
    pub uri: String,
    pub content_type: String,
    pub body: Option<Value>,
}

impl Call {
    pub fn is_apply(&self) -> bool {
        self.content_type == "application/apply-patch+yaml"
    }
}

/// The mock cluster's state.
pub struct Cluster {
    pub dep: Value,
    pub replica_sets: Vec<Value>,
    pub pods: Vec<Value>,
    pub hpas: Vec<Value>,
    /// Statuses each watch streams, in order; with none left a watch is held open.
    pub rollouts: VecDeque<Vec<Value>>,
    pub calls: Vec<Call>,
    /// Cancelled when a watch is held open (to stop a run while it waits).
    pub on_hold: Option<CancellationToken>,
    held: Vec<SendResponse<Response<Body>>>,
}

pub type Shared = Arc<Mutex<Cluster>>;

impl Cluster {
    /// A Deployment `web` in `ns` (container `app`, replicas 1, CPU request 500m and limit 1
    /// written by another manager) at generation 1, rolled out; its ReplicaSet `old` (rev 1).
    pub fn new() -> Cluster {
        Cluster {
            dep: json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web", "namespace": "ns", "uid": "uid-web",
                    "generation": 1, "resourceVersion": "10",
                    "annotations": { "deployment.kubernetes.io/revision": "1" } },
                "spec": {
                    "replicas": 1,
                    "selector": { "matchLabels": { "app": "web" } },
                    "template": {
                        "metadata": { "labels": { "app": "web" } },
                        "spec": { "containers": [ { "name": "app", "image": "web:1",
                            "resources": { "requests": { "cpu": "500m", "memory": "64Mi" },
                                           "limits": { "cpu": "1", "memory": "64Mi" } } } ] }
                    }
                },
                "status": status(1, 1, 1, 1, 0)
            }),
            replica_sets: vec![replica_set("old", "1")],
            pods: Vec::new(),
            hpas: Vec::new(),
            rollouts: VecDeque::new(),
            calls: Vec::new(),
            on_hold: None,
            held: Vec::new(),
        }
    }

    pub fn applies(&self) -> Vec<Value> {
        self.calls
            .iter()
            .filter(|c| c.is_apply())
            .filter_map(|c| c.body.clone())
            .collect()
    }

    pub fn container(&self) -> Value {
        self.dep["spec"]["template"]["spec"]["containers"][0].clone()
    }
}

/// A Deployment status.
pub fn status(observed: i64, replicas: i32, updated: i32, available: i32, unavail: i32) -> Value {
    json!({ "observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated,
            "availableReplicas": available, "readyReplicas": available,
            "unavailableReplicas": unavail })
}

/// A ReplicaSet of `web` with this hash and revision.
pub fn replica_set(hash: &str, revision: &str) -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": { "name": format!("web-{hash}"), "namespace": "ns",
            "labels": { "app": "web", "pod-template-hash": hash },
            "annotations": { "deployment.kubernetes.io/revision": revision },
            "ownerReferences": [ { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                   "uid": "uid-web", "controller": true } ] },
        "spec": { "selector": { "matchLabels": { "app": "web" } } } })
}

/// A pod of ReplicaSet `hash`.
pub fn pod(name: &str, hash: &str, ip: &str, ready: bool, terminating: bool) -> Value {
    let mut p = json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": name, "namespace": "ns",
            "labels": { "app": "web", "pod-template-hash": hash } },
        "spec": { "nodeName": "node-a", "containers": [ { "name": "app" } ] },
        "status": { "podIP": ip, "conditions": [
            { "type": "Ready", "status": if ready { "True" } else { "False" } } ] } });
    if terminating {
        p["metadata"]["deletionTimestamp"] = json!("2026-12-01T00:00:00Z");
    }
    p
}

/// A client, and the task answering it from `cluster`.
pub fn client(cluster: Shared) -> (kube::Client, tokio::task::JoinHandle<()>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(serve(handle, cluster));
    (kube::Client::new(service, "ns"), task)
}

async fn serve(mut handle: Handle<Request<Body>, Response<Body>>, cluster: Shared) {
    while let Some((req, send)) = handle.next_request().await {
        let method = req.method().to_string();
        let uri = req.uri().to_string();
        let content_type = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).ok();
        let call = Call {
            method,
            uri,
            content_type,
            body,
        };
        let mut c = cluster.lock().unwrap();
        c.calls.push(call.clone());
        match answer(&mut c, &call) {
            Some((code, bytes)) => send.send_response(response(code, bytes)),
            None => {
                if let Some(t) = &c.on_hold {
                    t.cancel();
                }
                c.held.push(send);
            }
        }
    }
}

fn response(code: u16, body: Vec<u8>) -> Response<Body> {
    Response::builder()
        .status(code)
        .body(Body::from(body))
        .unwrap()
}

fn ok(v: &Value) -> Option<(u16, Vec<u8>)> {
    Some((200, serde_json::to_vec(v).unwrap()))
}

fn list(kind: &str, items: &[Value]) -> Value {
    json!({ "apiVersion": "v1", "kind": kind, "metadata": { "resourceVersion": "1" },
            "items": items })
}

/// The answer to one call (status, body); `None` holds it open.
fn answer(c: &mut Cluster, call: &Call) -> Option<(u16, Vec<u8>)> {
    let path = call.uri.split('?').next().unwrap_or_default();
    if path.ends_with("/horizontalpodautoscalers") {
        return ok(&list("HorizontalPodAutoscalerList", &c.hpas));
    }
    if let Some((_, name)) = path.rsplit_once("/horizontalpodautoscalers/") {
        return hpa(c, call, name);
    }
    if path.ends_with("/replicasets") {
        return ok(&list("ReplicaSetList", &c.replica_sets));
    }
    if path.ends_with("/pods") {
        return ok(&list("PodList", &c.pods));
    }
    if call.uri.contains("watch=true") {
        // A watch body is lines of JSON events, not one JSON value.
        let batch = c.rollouts.pop_front()?;
        let mut lines = String::new();
        for s in batch {
            c.dep["status"] = s;
            bump_version(&mut c.dep);
            lines.push_str(&json!({ "type": "MODIFIED", "object": c.dep }).to_string());
            lines.push('\n');
        }
        return Some((200, lines.into_bytes()));
    }
    match (call.method.as_str(), &call.body) {
        ("GET", _) => ok(&c.dep),
        ("PATCH", Some(b)) if call.is_apply() => {
            apply(&mut c.dep, b);
            ok(&c.dep)
        }
        ("PATCH", Some(b)) => {
            strategic(&mut c.dep, b);
            ok(&c.dep)
        }
        _ => Some((
            400,
            serde_json::to_vec(&json!({ "kind": "Status", "code": 400, "message": "unexpected" }))
                .unwrap(),
        )),
    }
}

/// One HPA by name: apply creates or replaces it, get and delete find it (404 when absent).
fn hpa(c: &mut Cluster, call: &Call, name: &str) -> Option<(u16, Vec<u8>)> {
    let at = c.hpas.iter().position(|h| h["metadata"]["name"] == name);
    match (call.method.as_str(), at, &call.body) {
        ("PATCH", _, Some(b)) if call.is_apply() => {
            let mut h = b.clone();
            h["status"] = json!({ "currentReplicas": 1, "desiredReplicas": 0 });
            match at {
                Some(i) => c.hpas[i] = h.clone(),
                None => c.hpas.push(h.clone()),
            }
            ok(&h)
        }
        ("GET", Some(i), _) => ok(&c.hpas[i]),
        ("DELETE", Some(i), _) => {
            let gone = c.hpas.remove(i);
            ok(
                &json!({ "kind": "Status", "apiVersion": "v1", "status": "Success",
                        "details": { "name": gone["metadata"]["name"] } }),
            )
        }
        _ => Some((
            404,
            serde_json::to_vec(&json!({ "kind": "Status", "apiVersion": "v1",
                "status": "Failure", "reason": "NotFound", "code": 404,
                "message": format!("horizontalpodautoscalers \"{name}\" not found") }))
            .unwrap(),
        )),
    }
}

fn bump_version(dep: &mut Value) {
    let rv: u64 = dep["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    dep["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
}

/// Apply as the API server does here: replicas and each CPU field the body sets, the
/// annotation set or (absent: loadgen owned it alone) dropped; a changed spec bumps the
/// generation, a changed template the revision.
fn apply(dep: &mut Value, body: &Value) {
    let before = dep["spec"].clone();
    let ann = &mut dep["metadata"]["annotations"];
    match body["metadata"]["annotations"].get(ORIGINAL) {
        Some(v) => ann[ORIGINAL] = v.clone(),
        None => {
            if let Some(m) = ann.as_object_mut() {
                m.remove(ORIGINAL);
            }
        }
    }
    if let Some(r) = body["spec"].get("replicas") {
        dep["spec"]["replicas"] = r.clone();
    }
    if let Some(c) = body["spec"]["template"]["spec"]["containers"].get(0) {
        let live = &mut dep["spec"]["template"]["spec"]["containers"][0]["resources"];
        for key in ["requests", "limits"] {
            if let Some(cpu) = c["resources"][key].get("cpu") {
                live[key]["cpu"] = cpu.clone();
            }
        }
    }
    changed(dep, &before);
}

/// A strategic-merge (or merge) patch of the one container, the annotation and the
/// managedFields: `null` deletes.
fn strategic(dep: &mut Value, body: &Value) {
    let before = dep["spec"].clone();
    if let Some(v) = body["metadata"]["annotations"].get(ORIGINAL) {
        let ann = &mut dep["metadata"]["annotations"];
        match v {
            Value::Null => {
                if let Some(m) = ann.as_object_mut() {
                    m.remove(ORIGINAL);
                }
            }
            v => ann[ORIGINAL] = v.clone(),
        }
    }
    if let Some(mf) = body["metadata"].get("managedFields") {
        dep["metadata"]["managedFields"] = mf.clone();
    }
    if let Some(c) = body["spec"]["template"]["spec"]["containers"].get(0) {
        let live = &mut dep["spec"]["template"]["spec"]["containers"][0]["resources"];
        for key in ["requests", "limits"] {
            if c["resources"][key].get("cpu").is_some_and(Value::is_null) {
                if let Some(m) = live[key].as_object_mut() {
                    m.remove("cpu");
                }
            }
        }
    }
    changed(dep, &before);
}

fn changed(dep: &mut Value, before: &Value) {
    if dep["spec"] == *before {
        return;
    }
    let generation = dep["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
    dep["metadata"]["generation"] = json!(generation);
    if dep["spec"]["template"] != before["template"] {
        let rev: u64 = dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] =
            json!((rev + 1).to_string());
    }
    bump_version(dep);
}
