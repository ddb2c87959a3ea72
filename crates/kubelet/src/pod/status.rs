//! The pod's status as a kubelet reports it through `pods/status`: phase, addresses, start
//! time, the `Initialized` / `PodReadyToStartContainers` / `ContainersReady` / `Ready` /
//! `PodScheduled` conditions with their transition times, and one entry per container (state,
//! last state, readiness, restarts). Sent only when it changed.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::{json, Value};

use super::{PodRun, State, Terminated};
use crate::time::now;

/// What was last sent, and when readiness last changed.
#[derive(Debug, Default)]
pub struct Reporter {
    last: Option<Value>,
    ready: Option<(bool, String)>,
}

fn terminated(t: &Terminated) -> Value {
    let mut v = json!({
        "exitCode": t.exit_code, "reason": t.reason,
        "startedAt": t.started, "finishedAt": t.finished,
    });
    if let Some(sig) = t.signal {
        v["signal"] = json!(sig);
    }
    v
}

fn state(s: &State) -> Value {
    match s {
        State::Waiting { reason, message } => {
            json!({ "waiting": { "reason": reason, "message": message } })
        }
        State::Running { started } => json!({ "running": { "startedAt": started } }),
        State::Terminated(t) => json!({ "terminated": terminated(t) }),
    }
}

impl PodRun {
    fn phase(&self) -> &'static str {
        if self.containers.is_empty() {
            return "Pending";
        }
        if self.finished || self.all_done() {
            let ok = self
                .containers
                .iter()
                .all(|c| matches!(&c.state, State::Terminated(t) if t.exit_code == 0));
            return if ok { "Succeeded" } else { "Failed" };
        }
        let never_started = self.containers.iter().any(|c| c.run == 0);
        if never_started {
            "Pending"
        } else {
            "Running"
        }
    }

    fn container_statuses(&self) -> Vec<Value> {
        self.containers
            .iter()
            .map(|c| {
                let mut v = json!({
                    "name": c.spec.name,
                    "image": c.spec.image.clone().unwrap_or_default(),
                    "imageID": format!("standin://{}", c.exe.program.display()),
                    "containerID": format!("standin://{}/{}/{}", self.uid, c.spec.name, c.run),
                    "ready": c.ready,
                    "started": matches!(c.state, State::Running { .. }),
                    "restartCount": c.restarts,
                    "state": state(&c.state),
                });
                if let Some(t) = &c.last {
                    v["lastState"] = json!({ "terminated": terminated(t) });
                }
                v
            })
            .collect()
    }

    fn conditions(&mut self) -> Vec<Value> {
        let running = !self.containers.is_empty() && !self.finished;
        let ready = running && self.containers.iter().all(|c| c.ready);
        let since = match &self.status.ready {
            Some((r, t)) if *r == ready => t.clone(),
            _ => {
                let t = now();
                self.status.ready = Some((ready, t.clone()));
                t
            }
        };
        let b = |v: bool| if v { "True" } else { "False" };
        let start = self.start_time.clone();
        vec![
            json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": start}),
            json!({"type": "Initialized", "status": "True", "lastTransitionTime": start}),
            json!({"type": "PodReadyToStartContainers", "status": b(self.sandbox.is_some()),
                   "lastTransitionTime": start}),
            json!({"type": "ContainersReady", "status": b(ready), "lastTransitionTime": since}),
            json!({"type": "Ready", "status": b(ready), "lastTransitionTime": since}),
        ]
    }

    fn status_value(&mut self) -> Value {
        let host = self.rt.config.host_ip().to_string();
        let mut status = json!({
            "phase": self.phase(),
            "hostIP": host, "hostIPs": [{ "ip": host }],
            "startTime": self.start_time,
            "conditions": self.conditions(),
            "containerStatuses": self.container_statuses(),
            "qosClass": self.pod.status.as_ref().and_then(|s| s.qos_class.clone()),
        });
        if let Some(s) = &self.sandbox {
            status["podIP"] = json!(s.ip.to_string());
            status["podIPs"] = json!([{ "ip": s.ip.to_string() }]);
        }
        status
    }

    /// Sends the status when it changed since the last one sent.
    pub(super) async fn report(&mut self) {
        let status = self.status_value();
        if self.status.last.as_ref() == Some(&status) {
            return;
        }
        self.send(status).await;
    }

    /// A pod that cannot start (yet): every container waiting with `reason`.
    pub(super) async fn report_waiting(&mut self, reason: &str, message: &str) {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let host = self.rt.config.host_ip().to_string();
        let statuses: Vec<Value> = spec
            .containers
            .iter()
            .map(|c| {
                json!({ "name": c.name, "image": c.image, "imageID": "", "ready": false,
                        "restartCount": 0, "started": false,
                        "state": { "waiting": { "reason": reason, "message": message } } })
            })
            .collect();
        let status = json!({
            "phase": "Pending", "hostIP": host, "hostIPs": [{ "ip": host }],
            "startTime": self.start_time,
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
                 "message": message},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            ],
            "containerStatuses": statuses,
        });
        if self.status.last.as_ref() != Some(&status) {
            self.send(status).await;
        }
    }

    async fn send(&mut self, status: Value) {
        let api: Api<Pod> = Api::namespaced(self.rt.client.clone(), &self.namespace);
        let patch = json!({ "status": status });
        match api
            .patch_status(
                &self.name,
                &PatchParams::default(),
                &Patch::Strategic(&patch),
            )
            .await
        {
            Ok(_) => self.status.last = Some(status),
            Err(kube::Error::Api(e)) if e.code == 404 => self.status.last = Some(status),
            Err(e) => tracing::warn!("status of pod {}/{}: {e}", self.namespace, self.name),
        }
    }

    /// Makes the pod's containers visible to `/metrics/resource` and the log endpoint.
    pub(super) fn publish_stats(&self) {
        let containers = self
            .containers
            .iter()
            .map(|c| crate::stats::ContainerStats {
                name: c.spec.name.clone(),
                dirs: c.cgroup.dirs().to_vec(),
                start: c.first_start.unwrap_or(0.0),
                log: c.log.clone(),
            })
            .collect();
        self.rt.publish(
            &self.uid,
            crate::stats::PodStats {
                namespace: self.namespace.clone(),
                name: self.name.clone(),
                containers,
                running: !self.finished,
            },
        );
    }
}
