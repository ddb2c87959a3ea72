//! A pod's sandbox and containers, made before its first start: everything that can wait (an
//! absent ConfigMap, a Secret, the namespace's token) is retried until it appears or the pod is
//! deleted; everything that cannot (an image with no local program, a probe the stand-in cannot
//! run, a CPU group the kernel refuses) leaves the pod Pending with a reason that says why.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use cpu_cgroup::Cgroup;
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::Api;
use tokio::sync::watch;

use super::{next_stop, ContainerRun, PodRun, State, Stop};
use crate::env::{self, EnvContext};
use crate::fields::cpu_limit;
use crate::probe::Prober;
use crate::volume::{self, VolumeContext};

/// How often a set-up that waits on something is retried.
const RETRY: Duration = Duration::from_secs(2);

/// Why a pod cannot start (yet).
enum SetupError {
    /// It will not start; the reason stays on its containers.
    Fatal {
        reason: &'static str,
        message: String,
    },
    /// It may start once what is missing appears.
    Retry {
        reason: &'static str,
        message: String,
    },
}

impl PodRun {
    pub(super) fn dir(&self) -> PathBuf {
        self.rt
            .config
            .state_dir
            .join("pods")
            .join(format!("{}_{}_{}", self.namespace, self.name, self.uid))
    }

    /// Sets the pod up, retrying what may appear later; `Err` when told to stop meanwhile.
    pub(super) async fn set_up(
        &mut self,
        stop: &mut watch::Receiver<Option<Stop>>,
    ) -> Result<(), Stop> {
        loop {
            let (reason, message, fatal) = match self.try_set_up().await {
                Ok(()) => return Ok(()),
                Err(SetupError::Fatal { reason, message }) => (reason, message, true),
                Err(SetupError::Retry { reason, message }) => (reason, message, false),
            };
            tracing::warn!("pod {}/{}: {reason}: {message}", self.namespace, self.name);
            self.report_waiting(reason, &message).await;
            if fatal {
                return Err(next_stop(stop).await);
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                why = next_stop(stop) => return Err(why),
            }
        }
    }

    /// Each container's program (an image no local program stands for is fatal) and its
    /// readiness prober.
    fn resolve(
        &self,
        containers: &[k8s_openapi::api::core::v1::Container],
    ) -> Result<Vec<(crate::image::Executable, Option<Prober>)>, SetupError> {
        let mut exes = Vec::new();
        for c in containers {
            let exe = self
                .rt
                .images
                .resolve(c)
                .map_err(|message| SetupError::Fatal {
                    reason: "ErrImageNeverPull",
                    message,
                })?;
            let prober = Prober::readiness(c).map_err(|message| SetupError::Fatal {
                reason: "CreateContainerConfigError",
                message,
            })?;
            exes.push((exe, prober));
        }
        Ok(exes)
    }

    async fn try_set_up(&mut self) -> Result<(), SetupError> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let mut exes = self.resolve(&spec.containers)?;
        if self.sandbox.is_none() {
            let s = self
                .rt
                .network
                .sandbox()
                .await
                .map_err(|e| SetupError::Retry {
                    reason: "ContainerCreating",
                    message: format!("network namespace: {e}"),
                })?;
            self.sandbox = Some(s);
        }
        let sandbox = self.sandbox.clone().expect("set just above");
        self.write_hosts(&sandbox)
            .await
            .map_err(|message| SetupError::Retry {
                reason: "ContainerCreating",
                message,
            })?;
        let dir = self.dir();
        let pod_ip = sandbox.ip.to_string();
        let host_ip = self.rt.config.host_ip().to_string();
        let vctx = VolumeContext {
            client: &self.rt.client,
            pod: &self.pod,
            pod_ip: pod_ip.clone(),
            host_ip: host_ip.clone(),
            root: dir.join("volumes"),
        };
        volume::materialise(&vctx)
            .await
            .map_err(|message| SetupError::Retry {
                reason: "ContainerCreating",
                message,
            })?;
        let ectx = EnvContext {
            client: &self.rt.client,
            pod: &self.pod,
            pod_ip,
            host_ip,
            api_endpoint: self.rt.config.api_endpoint.as_deref(),
            node_cpus: self.rt.node.cpus,
            node_memory: self.rt.node.memory_bytes,
        };
        let mut envs = Vec::new();
        for c in &spec.containers {
            envs.push(
                env::build(&ectx, c)
                    .await
                    .map_err(|message| SetupError::Retry {
                        reason: "CreateContainerConfigError",
                        message,
                    })?,
            );
        }
        // `$(VAR)` in command and args are the container's variables, as the kubelet expands them.
        for ((exe, _), vars) in exes.iter_mut().zip(&envs) {
            for a in &mut exe.args {
                *a = env::expand(a, vars);
            }
        }
        self.make_containers(&spec.containers, exes, envs, &dir)
    }

    /// The containers with their CPU groups: made last, so a retried set-up leaks no group.
    fn make_containers(
        &mut self,
        specs: &[k8s_openapi::api::core::v1::Container],
        exes: Vec<(crate::image::Executable, Option<Prober>)>,
        envs: Vec<BTreeMap<String, String>>,
        dir: &std::path::Path,
    ) -> Result<(), SetupError> {
        std::fs::create_dir_all(dir).map_err(|e| SetupError::Retry {
            reason: "ContainerCreating",
            message: format!("{}: {e}", dir.display()),
        })?;
        let short_uid: String = self.uid.chars().filter(|c| *c != '-').take(12).collect();
        let mut containers = Vec::new();
        for (i, ((c, (exe, prober)), env)) in specs.iter().zip(exes).zip(envs).enumerate() {
            let name = format!("{}{short_uid}-c{i}", crate::CGROUP_PREFIX);
            let cgroup = Cgroup::create(&self.rt.layout, &name, cpu_limit(c)).map_err(|e| {
                SetupError::Fatal {
                    reason: "CreateContainerError",
                    message: format!("cpu group: {e}"),
                }
            })?;
            containers.push(ContainerRun {
                spec: c.clone(),
                exe,
                env,
                mounts: volume::mounts(&dir.join("volumes"), c),
                cgroup,
                log: dir.join(format!("{}.log", c.name)),
                pid: None,
                state: State::Waiting {
                    reason: "ContainerCreating".into(),
                    message: String::new(),
                },
                last: None,
                restarts: 0,
                ready: false,
                prober,
                run: 0,
                first_start: None,
            });
        }
        self.restart_due = vec![None; containers.len()];
        self.containers = containers;
        Ok(())
    }

    /// The pod's `/etc/hosts`: itself, and every Service with a cluster IP by its DNS names
    /// (the stand-in has no cluster DNS; names are those of Services that exist at the start).
    async fn write_hosts(&self, sandbox: &crate::network::Sandbox) -> Result<(), String> {
        let api: Api<Service> = Api::all(self.rt.client.clone());
        let services = api
            .list(&ListParams::default())
            .await
            .map_err(|e| format!("listing Services for /etc/hosts: {e}"))?;
        let mut hosts = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost\n{}\t{}\n",
            sandbox.ip, self.name
        );
        for s in services {
            let Some(ip) = s.spec.as_ref().and_then(|s| s.cluster_ip.clone()) else {
                continue;
            };
            if ip.is_empty() || ip == "None" {
                continue;
            }
            let name = s.metadata.name.clone().unwrap_or_default();
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            let short = if ns == self.namespace {
                name.as_str()
            } else {
                ""
            };
            hosts.push_str(&format!(
                "{ip}\t{name}.{ns}.svc.cluster.local {name}.{ns}.svc {name}.{ns} {short}\n"
            ));
        }
        let dir = sandbox.etc_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(dir.join("hosts"), hosts).map_err(|e| format!("{}: {e}", dir.display()))
    }
}
