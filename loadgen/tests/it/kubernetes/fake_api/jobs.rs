//! Indexed Jobs in the fake API server — Job controller and kubelet in one, for a sharded step's
//! generator pods: `POST jobs` starts one "pod" per index as a real `loadgen attack` process
//! (this build's binary, the pod's args with `$(JOB_COMPLETION_INDEX)` expanded and the
//! downward-API start file a per-pod file), a merge `PATCH` of a pod's `loadgen.io/start-at`
//! annotation writes that file as the kubelet would, `GET pods/NAME/log` returns what the process
//! printed, an exited process is Succeeded or Failed (with its container's terminated state),
//! and `DELETE jobs/NAME` kills what still runs and forgets its pods.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

/// The annotation the coordinator sets (loadgen's `deployer::kubernetes::job`).
use loadgen::deployer::kubernetes::job::{INDEX_ANNOTATION, START_AT_ANNOTATION};

/// One generator pod: its process and files.
struct JobPod {
    job: String,
    value: Value,
    child: Child,
    start_file: PathBuf,
    log_file: PathBuf,
}

/// The fake's Jobs and their pods.
#[derive(Default)]
pub struct Jobs {
    dir: Option<tempfile::TempDir>,
    pods: Vec<JobPod>,
    /// Names of the Jobs created, in order (kept after deletion, for the tests).
    pub created: Vec<String>,
}

impl Jobs {
    /// Creates the Job's pods: one process per completion index.
    pub fn create(&mut self, job: &Value) -> Result<Value, String> {
        let name = job["metadata"]["name"]
            .as_str()
            .ok_or("no metadata.name")?
            .to_string();
        let spec = &job["spec"];
        if spec["completionMode"] != "Indexed" {
            return Err("the fake runs Indexed Jobs only".into());
        }
        let count = spec["completions"].as_u64().ok_or("no spec.completions")?;
        let container = &spec["template"]["spec"]["containers"][0];
        let dir = match &self.dir {
            Some(d) => d.path().to_path_buf(),
            None => {
                let d = tempfile::Builder::new()
                    .prefix("loadgen-fake-jobs-")
                    .tempdir();
                let d = d.map_err(|e| e.to_string())?;
                let path = d.path().to_path_buf();
                self.dir = Some(d);
                path
            }
        };
        for k in 0..count {
            let pod = self.start_pod(&name, k, container, &dir)?;
            self.pods.push(pod);
        }
        self.created.push(name);
        Ok(job.clone())
    }

    fn start_pod(
        &self,
        job: &str,
        k: u64,
        container: &Value,
        dir: &std::path::Path,
    ) -> Result<JobPod, String> {
        let pod = format!("{job}-{k}-fake");
        let start_file = dir.join(format!("{pod}.start"));
        let log_file = dir.join(format!("{pod}.log"));
        std::fs::write(&start_file, "").map_err(|e| e.to_string())?;
        let mut args: Vec<String> = container["args"]
            .as_array()
            .ok_or("no container args")?
            .iter()
            .map(|a| {
                a.as_str()
                    .unwrap_or_default()
                    .replace("$(JOB_COMPLETION_INDEX)", &k.to_string())
            })
            .collect();
        if let Some(i) = args.iter().position(|a| a == "--start-at-file") {
            args[i + 1] = start_file.display().to_string();
        }
        let log = std::fs::File::create(&log_file).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadgen"));
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        for e in container["env"].as_array().into_iter().flatten() {
            cmd.env(
                e["name"].as_str().unwrap_or_default(),
                e["value"].as_str().unwrap_or_default(),
            );
        }
        let child = cmd.spawn().map_err(|e| format!("start {pod}: {e}"))?;
        let value = json!({ "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": pod, "namespace": super::NAMESPACE,
                "labels": { "job-name": job },
                "annotations": { INDEX_ANNOTATION: k.to_string() } },
            "spec": { "containers": [container] },
            "status": { "phase": "Running" } });
        Ok(JobPod {
            job: job.to_string(),
            value,
            child,
            start_file,
            log_file,
        })
    }

    /// Every generator pod, its phase brought up to date with its process.
    pub fn pods(&mut self) -> Vec<Value> {
        for p in &mut self.pods {
            if p.value["status"]["phase"] != "Running" {
                continue;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                let code = status.code().unwrap_or(137);
                let (phase, reason) = if code == 0 {
                    ("Succeeded", "Completed")
                } else {
                    ("Failed", "Error")
                };
                p.value["status"] = json!({ "phase": phase, "containerStatuses": [{
                    "name": p.value["spec"]["containers"][0]["name"], "ready": false,
                    "restartCount": 0, "image": "", "imageID": "",
                    "state": { "terminated": { "reason": reason, "exitCode": code } } }] });
            }
        }
        self.pods.iter().map(|p| p.value.clone()).collect()
    }

    /// A merge patch of pod `name`'s annotations; the start time is written to its file.
    pub fn annotate(&mut self, name: &str, patch: &Value) -> Option<Value> {
        let p = self
            .pods
            .iter_mut()
            .find(|p| p.value["metadata"]["name"] == name)?;
        for (k, v) in patch["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
        {
            p.value["metadata"]["annotations"][k] = v.clone();
            if k == START_AT_ANNOTATION {
                std::fs::write(&p.start_file, v.as_str().unwrap_or_default()).ok()?;
            }
        }
        Some(p.value.clone())
    }

    /// What pod `name`'s process printed.
    pub fn log(&self, name: &str) -> Option<String> {
        let p = self
            .pods
            .iter()
            .find(|p| p.value["metadata"]["name"] == name)?;
        std::fs::read_to_string(&p.log_file).ok()
    }

    /// Deletes Job `name`: its processes still running are killed (by their handles), its
    /// pods forgotten. `false` when there is no such Job.
    pub fn delete(&mut self, name: &str) -> bool {
        if !self.created.iter().any(|j| j == name) {
            return false;
        }
        for p in self.pods.iter_mut().filter(|p| p.job == name) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        self.pods.retain(|p| p.job != name);
        true
    }

    /// Generator pods that still exist (a deleted Job leaves none).
    pub fn live(&self) -> usize {
        self.pods.len()
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        for p in &mut self.pods {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

/// An answer: status, and a JSON object or (a log) plain text.
pub enum Reply {
    Json(u16, Value),
    Text(String),
}

/// The Job routes of the fake: `None` for a call that is not one of them.
pub fn route(jobs: &mut Jobs, method: &str, segs: &[&str], body: &[u8]) -> Option<Reply> {
    let parsed = || serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    let not_found = |what: &str| {
        Reply::Json(
            404,
            json!({ "kind": "Status", "apiVersion": "v1",
        "status": "Failure", "message": format!("{what} not found"), "code": 404 }),
        )
    };
    Some(match (method, segs) {
        ("POST", ["apis", "batch", "v1", "namespaces", _, "jobs"]) => {
            match jobs.create(&parsed()) {
                Ok(v) => Reply::Json(201, v),
                Err(e) => Reply::Json(
                    422,
                    json!({ "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": e, "code": 422 }),
                ),
            }
        }
        ("DELETE", ["apis", "batch", "v1", "namespaces", _, "jobs", name]) => {
            if jobs.delete(name) {
                Reply::Json(
                    200,
                    json!({ "kind": "Status", "apiVersion": "v1", "status": "Success" }),
                )
            } else {
                not_found(&format!("jobs.batch \"{name}\""))
            }
        }
        ("PATCH", ["api", "v1", "namespaces", _, "pods", name]) => {
            match jobs.annotate(name, &parsed()) {
                Some(v) => Reply::Json(200, v),
                None => not_found(&format!("pods \"{name}\"")),
            }
        }
        ("GET", ["api", "v1", "namespaces", _, "pods", name, "log"]) => match jobs.log(name) {
            Some(text) => Reply::Text(text),
            None => not_found(&format!("pods \"{name}\"")),
        },
        _ => return None,
    })
}
