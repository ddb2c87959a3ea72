//! What the fake API server stores: one Deployment with its ReplicaSets, pods and the
//! namespace's HPAs, as JSON, with one `resourceVersion` counter for all of them and a change
//! signal that watches and the kubelet wait on.

use serde_json::{json, Value};
use tokio::sync::watch;

use super::fields::{self, Owners};

/// The revision annotation the Deployment controller keeps on a Deployment and its
/// ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";

pub struct State {
    pub dep: Value,
    pub replica_sets: Vec<Value>,
    pub pods: Vec<Value>,
    pub hpas: Vec<Value>,
    /// Indexed Jobs of generator pods (sharded steps).
    pub jobs: super::jobs::Jobs,
    /// Every call, `METHOD path?query content-type`, for the tests to assert on.
    pub calls: Vec<String>,
    owners: Owners,
    rv: u64,
    changes: watch::Sender<u64>,
}

impl State {
    pub fn new(dep: Value) -> (State, watch::Receiver<u64>) {
        let (changes, rx) = watch::channel(1);
        let owners = Owners::first_writer(&dep);
        let mut s = State {
            dep,
            replica_sets: Vec::new(),
            pods: Vec::new(),
            hpas: Vec::new(),
            jobs: Default::default(),
            calls: Vec::new(),
            owners,
            rv: 1,
            changes,
        };
        s.dep["metadata"]["generation"] = json!(1);
        s.dep["metadata"]["uid"] = json!("fake-uid-deployment");
        s.dep["metadata"]["annotations"][REVISION] = json!("1");
        s.touch();
        (s, rx)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A new resourceVersion on the Deployment, and everyone waiting is woken.
    pub fn touch(&mut self) {
        self.rv += 1;
        self.dep["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.changes.send_replace(self.rv);
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn generation(&self) -> i64 {
        self.dep["metadata"]["generation"].as_i64().unwrap_or(1)
    }

    /// A patch of the Deployment (apply or strategic), then what the API server does after
    /// any write: a changed spec bumps the generation, a changed pod template the revision.
    pub fn patch(&mut self, apply: bool, body: &Value) {
        let before = self.dep["spec"].clone();
        if apply {
            fields::apply(&mut self.dep, &mut self.owners, body);
        } else {
            fields::strategic(&mut self.dep, &mut self.owners, body);
        }
        if self.dep["spec"] != before {
            self.dep["metadata"]["generation"] = json!(self.generation() + 1);
            if self.dep["spec"]["template"] != before["template"] {
                let rev: u64 = self.dep["metadata"]["annotations"][REVISION]
                    .as_str()
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(1);
                self.dep["metadata"]["annotations"][REVISION] = json!((rev + 1).to_string());
            }
        }
        self.touch();
    }
}

/// `a=b,c=d` matched against an object's labels.
pub fn selects(selector: &str, obj: &Value) -> bool {
    selector.split(',').filter(|s| !s.is_empty()).all(|term| {
        let (k, v) = term.split_once('=').unwrap_or((term, ""));
        obj["metadata"]["labels"][k] == v
    })
}
