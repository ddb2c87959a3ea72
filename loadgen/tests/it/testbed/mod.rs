//! Tests on the **real Kubernetes control plane** of `k8s/testbed`: the apiserver, controller
//! manager, scheduler, metrics-server and kube-proxy of v1.37, with our kubelet stand-in running
//! the pods as local processes under real CFS quotas. `k8s/testbed/up` is idempotent: the first
//! test that needs it starts it (the Go binaries build once into a cache; a cold build takes
//! ~18 min), later tests and later runs reuse it; `k8s/testbed/down` stops it (`.ci/run` does).
//! Every test works in a namespace of its own and takes the serial lock.
//!
//! Run with `cargo test -p loadgen --test it -- testbed::`.

mod any_service;
mod autoscale;
mod campaign;
mod control_plane;
mod drift;
mod https;
mod job;
mod lease;
mod metrics;
mod owners;
mod rbac;
mod rollout;
mod shards;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, external};

/// A running testbed.
#[derive(Debug, Clone)]
pub struct Testbed {
    pub kubeconfig: PathBuf,
}

/// The testbed, started on first use; `None` after the skip-or-fail policy when it cannot run
/// here (no kubectl, iproute2, iptables, Go for a cold build, or writable cgroups).
pub fn testbed() -> Option<Testbed> {
    static UP: OnceLock<Result<Testbed, String>> = OnceLock::new();
    for (name, package) in [
        ("kubectl", "kubectl"),
        ("ip", "iproute2"),
        ("iptables-restore", "iptables"),
        ("nsenter", "util-linux"),
        ("redis-server", "redis-server"),
    ] {
        external::binary(name, package)?;
    }
    if !external::cgroups_usable() {
        return None;
    }
    external::available(UP.get_or_init(start).clone())
}

fn start() -> Result<Testbed, String> {
    let up = common::repo_dir().join("k8s/testbed/up");
    let t0 = Instant::now();
    let out = Command::new(&up)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", up.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("k8s/testbed/up ({:.0?}):\n{stderr}", t0.elapsed());
    let last = stdout.lines().last().unwrap_or("");
    match last.strip_prefix("KUBECONFIG=") {
        Some(path) if out.status.success() => Ok(Testbed {
            kubeconfig: PathBuf::from(path),
        }),
        _ => Err(format!(
            "the Kubernetes testbed did not start (k8s/testbed/up exited {:?}): {}",
            out.status.code(),
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        )),
    }
}

impl Testbed {
    /// `kubectl ARGS` with the testbed's kubeconfig: stdout, or a panic with its stderr.
    pub fn kubectl(&self, args: &[&str]) -> String {
        self.kubectl_in(args, None)
    }

    /// `kubectl ARGS` with `stdin` piped in.
    pub fn kubectl_in(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.try_kubectl(args, stdin);
        match out {
            Ok(s) => s,
            Err(e) => panic!("kubectl {}: {e}", args.join(" ")),
        }
    }

    pub fn try_kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut pipe = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        }
        drop(pipe);
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `kubectl get … -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", "json"]);
        serde_json::from_str(&self.kubectl(&all)).unwrap()
    }

    /// `kubectl auth can-i VERB RESOURCE` as the namespace's `loadgen` ServiceAccount.
    pub fn can_i(&self, ns: &str, verb: &str, resource: &str) -> bool {
        let sa = format!("system:serviceaccount:{ns}:loadgen");
        // `auth can-i` answers on stdout and exits 1 for "no".
        let out = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["-n", ns, "auth", "can-i", verb, resource, "--as", &sa])
            .output()
            .unwrap();
        let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(
            answer == "yes" || answer == "no",
            "kubectl auth can-i {verb} {resource}: {answer} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        answer == "yes"
    }

    /// Polls `f` every 250 ms until it returns `Some` or `bound` passes.
    pub fn wait<T>(&self, bound: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + bound;
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A fresh namespace `name` (deleted first if a previous run left it).
    pub fn namespace(&self, name: &str) -> Namespace {
        let _ = self.try_kubectl(
            &["delete", "namespace", name, "--wait=true", "--timeout=60s"],
            None,
        );
        self.kubectl(&["create", "namespace", name]);
        // Pods cannot be created before the namespace's default ServiceAccount exists.
        let sa = self.wait(Duration::from_secs(30), || {
            self.try_kubectl(&["-n", name, "get", "serviceaccount", "default"], None)
                .ok()
        });
        assert!(sa.is_some(), "namespace {name}: no default ServiceAccount");
        Namespace {
            bed: self.clone(),
            name: name.to_string(),
        }
    }
}

/// A namespace of one test; deleted (without waiting) when dropped.
pub struct Namespace {
    pub bed: Testbed,
    pub name: String,
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self
            .bed
            .try_kubectl(&["delete", "namespace", &self.name, "--wait=false"], None);
    }
}

impl Namespace {
    /// The repository's `k8s/base` (polymetrie behind its Service, Redis), rendered by kustomize
    /// into this namespace, without the ServiceMonitor (the testbed has no Prometheus
    /// operator), with the admin-token Secret the manifests expect; waits until polymetrie and
    /// Redis are Ready. `cost` replaces `POLYMETRIE_COST`.
    pub fn deploy_base(&self, cost: &str) {
        let docs = self.base_manifests(cost);
        self.bed.kubectl_in(&["apply", "-f", "-"], Some(&docs));
        self.wait_base();
    }

    /// `k8s/base` as [`Self::deploy_base`] renders it, the admin-token Secret made.
    pub fn base_manifests(&self, cost: &str) -> String {
        let ns = &self.name;
        if self
            .bed
            .try_kubectl(&["-n", ns, "get", "secret", "polymetrie-admin-token"], None)
            .is_err()
        {
            self.bed.kubectl(&[
                "-n",
                ns,
                "create",
                "secret",
                "generic",
                "polymetrie-admin-token",
                "--from-literal=token=testbed-admin-token",
            ]);
        }
        let base = common::repo_dir().join("k8s/base");
        let rendered = self.bed.kubectl(&["kustomize", &base.to_string_lossy()]);
        let docs: Vec<String> = rendered
            .split("\n---\n")
            .filter(|d| !d.contains("kind: ServiceMonitor"))
            .map(|d| {
                d.replace("namespace: loadgen", &format!("namespace: {ns}"))
                    .replace("value: 5.5ms", &format!("value: {cost}"))
            })
            .collect();
        docs.join("\n---\n")
    }

    /// Waits until Redis and polymetrie are rolled out and the polymetrie Service accepts
    /// connections (pods are Ready before kube-proxy routes to them).
    pub fn wait_base(&self) {
        self.wait_rollouts();
        let addr: std::net::SocketAddr = format!("{}:8080", self.cluster_ip("polymetrie"))
            .parse()
            .unwrap();
        let routed = self.bed.wait(Duration::from_secs(30), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .ok()
                .map(drop)
        });
        assert!(
            routed.is_some(),
            "the polymetrie Service never accepted a connection"
        );
    }

    fn wait_rollouts(&self) {
        for dep in ["redis", "polymetrie"] {
            self.bed.kubectl(&[
                "-n",
                &self.name,
                "rollout",
                "status",
                &format!("deployment/{dep}"),
                "--timeout=90s",
            ]);
        }
    }

    /// The cluster IP of Service `name`.
    pub fn cluster_ip(&self, name: &str) -> String {
        self.bed.kubectl(&[
            "-n",
            &self.name,
            "get",
            "service",
            name,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
    }

    pub fn get_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        self.bed.get_json(&all)
    }
}

/// `loadgen ARGS` against the testbed (its kubeconfig, nothing inherited that would point
/// elsewhere).
pub fn loadgen(bed: &Testbed, args: &[&std::ffi::OsStr]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    c.args(args)
        .env("KUBECONFIG", &bed.kubeconfig)
        .env_remove("LOADGEN_ALLOW_REMOTE")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    c
}

/// A path as an argument.
pub fn arg(p: &Path) -> &std::ffi::OsStr {
    p.as_os_str()
}
