//! One pod's life on the stand-in: set up its sandbox (network namespace, `/etc/hosts`,
//! volumes, environment, one CPU group per container with the container's `limits.cpu` as a
//! real CFS quota), start its containers, probe them, restart them by `restartPolicy`, report
//! its status, and on deletion stop it within its grace period (preStop sleep, SIGTERM, SIGKILL)
//! and remove the object.

mod container;
mod setup;
mod status;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Preconditions};
use kube::Api;
use rustix::process::{kill_process, kill_process_group, Pid, Signal};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub use container::{ContainerRun, Exit, State, Terminated};

use crate::network::Sandbox;
use crate::Runtime;

/// Why a pod's supervisor stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// The object is being deleted with this grace (seconds): stop, then remove it.
    Delete(i64),
    /// The stand-in itself stops: stop the processes, leave the object.
    Shutdown,
}

/// Bound on a restart's back-off (a kubelet goes to 5 min; a testbed wants to see it soon).
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long after SIGKILL the exits are waited for.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// Everything the supervisor keeps about its pod.
pub struct PodRun {
    rt: Arc<Runtime>,
    pod: Pod,
    namespace: String,
    name: String,
    uid: String,
    sandbox: Option<Sandbox>,
    containers: Vec<ContainerRun>,
    restart_due: Vec<Option<Instant>>,
    start_time: String,
    status: status::Reporter,
    /// The pod reached Succeeded or Failed: its processes and sandbox are gone.
    finished: bool,
}

/// Runs `pod` until `stop` says otherwise; `updates` brings the pod object as it changes.
pub async fn supervise(
    rt: Arc<Runtime>,
    pod: Pod,
    mut stop: watch::Receiver<Option<Stop>>,
    mut updates: watch::Receiver<Pod>,
) {
    let mut run = PodRun::new(rt, pod);
    let (exits_tx, mut exits) = mpsc::unbounded_channel();
    let why = match run.set_up(&mut stop).await {
        Ok(()) => {
            run.start_all(&exits_tx);
            run.report().await;
            run.serve(&exits_tx, &mut exits, &mut stop, &mut updates)
                .await
        }
        Err(why) => why,
    };
    run.stop(why, &mut exits).await;
}

impl PodRun {
    fn new(rt: Arc<Runtime>, pod: Pod) -> PodRun {
        let m = &pod.metadata;
        PodRun {
            namespace: m.namespace.clone().unwrap_or_default(),
            name: m.name.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            rt,
            sandbox: None,
            containers: Vec::new(),
            restart_due: Vec::new(),
            start_time: crate::time::now(),
            status: status::Reporter::default(),
            finished: false,
            pod,
        }
    }

    fn restart_policy(&self) -> &str {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("Always")
    }

    fn start_all(&mut self, exits: &mpsc::UnboundedSender<Exit>) {
        let netns = self
            .sandbox
            .as_ref()
            .map(|s| s.netns.clone())
            .unwrap_or_default();
        for (i, c) in self.containers.iter_mut().enumerate() {
            c.start(i, &netns, exits.clone());
        }
        self.publish_stats();
    }

    /// The running pod: exits, probes and restarts until told to stop.
    async fn serve(
        &mut self,
        exits_tx: &mpsc::UnboundedSender<Exit>,
        exits: &mut mpsc::UnboundedReceiver<Exit>,
        stop: &mut watch::Receiver<Option<Stop>>,
        updates: &mut watch::Receiver<Pod>,
    ) -> Stop {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                Some(exit) = exits.recv() => self.on_exit(exit).await,
                Ok(()) = updates.changed() => {
                    let pod = updates.borrow_and_update().clone();
                    self.on_update(pod);
                }
                _ = tick.tick() => self.on_tick(exits_tx).await,
                why = next_stop(stop) => return why,
            }
            self.report().await;
        }
    }

    /// The object changed (labels, annotations): its downward-API files follow.
    fn on_update(&mut self, pod: Pod) {
        self.pod = pod;
        let Some(sandbox) = &self.sandbox else {
            return;
        };
        let ctx = crate::volume::VolumeContext {
            client: &self.rt.client,
            pod: &self.pod,
            pod_ip: sandbox.ip.to_string(),
            host_ip: self.rt.config.host_ip().to_string(),
            root: self.dir().join("volumes"),
        };
        if let Err(e) = crate::volume::refresh_downward(&ctx) {
            tracing::warn!("pod {}/{}: downward API: {e}", self.namespace, self.name);
        }
    }

    async fn on_exit(&mut self, exit: Exit) {
        let policy = self.restart_policy().to_string();
        let Some(c) = self.containers.get_mut(exit.index) else {
            return;
        };
        if exit.run != c.run || c.pid.is_none() {
            return;
        }
        let t = c.exited(&exit.status);
        let restart = match policy.as_str() {
            "Never" => false,
            "OnFailure" => t.exit_code != 0,
            _ => true,
        };
        if restart {
            let backoff = Duration::from_secs(1 << c.restarts.clamp(0, 4)).min(MAX_BACKOFF);
            c.last = Some(t);
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: format!(
                    "back-off {}s restarting failed container",
                    backoff.as_secs()
                ),
            };
            self.restart_due[exit.index] = Some(Instant::now() + backoff);
        }
        if !self.finished && self.all_done() {
            // Succeeded or Failed: nothing runs in it again; free what it held.
            self.finished = true;
            self.release().await;
            self.publish_stats();
        }
    }

    /// Every container ended for good (only under `Never` / `OnFailure`).
    fn all_done(&self) -> bool {
        self.restart_due.iter().all(Option::is_none)
            && self
                .containers
                .iter()
                .all(|c| matches!(c.state, State::Terminated(_)))
    }

    async fn on_tick(&mut self, exits: &mpsc::UnboundedSender<Exit>) {
        let Some(sandbox) = self.sandbox.clone() else {
            return;
        };
        for i in 0..self.containers.len() {
            if self.restart_due[i].is_some_and(|due| Instant::now() >= due) {
                self.restart_due[i] = None;
                let c = &mut self.containers[i];
                c.restarts += 1;
                if let Some(p) = c.prober.as_mut() {
                    p.reset();
                }
                c.start(i, &sandbox.netns, exits.clone());
            }
            let c = &mut self.containers[i];
            if !matches!(c.state, State::Running { .. }) {
                continue;
            }
            match c.prober.as_mut() {
                None => c.ready = true,
                Some(p) if p.due() => {
                    if let Some(ready) = p.run(c.ready, sandbox.ip, &sandbox.netns).await {
                        c.ready = ready;
                    }
                }
                Some(_) => {}
            }
        }
    }

    /// Stops every process: preStop sleeps, SIGTERM, and SIGKILL to the process group of any
    /// left when the grace runs out; then frees the sandbox and, on a deletion, removes the
    /// object.
    async fn stop(&mut self, why: Stop, exits: &mut mpsc::UnboundedReceiver<Exit>) {
        let grace = match why {
            Stop::Delete(g) => Duration::from_secs(g.max(0) as u64),
            Stop::Shutdown => Duration::from_secs(5),
        };
        let deadline = Instant::now() + grace;
        let pre_stop = self.pre_stop_sleep().min(grace);
        if !pre_stop.is_zero() {
            tokio::time::sleep(pre_stop).await;
        }
        self.signal(Signal::TERM, false);
        while self.any_running() && Instant::now() < deadline {
            match tokio::time::timeout_at(deadline, exits.recv()).await {
                Ok(Some(exit)) => self.stopped(exit),
                _ => break,
            }
        }
        if self.any_running() {
            self.signal(Signal::KILL, true);
            let kill_deadline = Instant::now() + KILL_WAIT;
            while self.any_running() {
                match tokio::time::timeout_at(kill_deadline, exits.recv()).await {
                    Ok(Some(exit)) => self.stopped(exit),
                    _ => break,
                }
            }
        }
        self.release().await;
        self.rt.forget(&self.uid);
        if let Stop::Delete(_) = why {
            self.delete_object().await;
        }
    }

    fn stopped(&mut self, exit: Exit) {
        if let Some(c) = self.containers.get_mut(exit.index) {
            if c.run == exit.run && c.pid.is_some() {
                c.exited(&exit.status);
            }
        }
    }

    fn any_running(&self) -> bool {
        self.containers.iter().any(|c| c.pid.is_some())
    }

    fn signal(&self, sig: Signal, group: bool) {
        for pid in self.containers.iter().filter_map(|c| c.pid) {
            let Some(pid) = Pid::from_raw(pid as i32) else {
                continue;
            };
            let _ = if group {
                kill_process_group(pid, sig)
            } else {
                kill_process(pid, sig)
            };
        }
    }

    /// The longest `lifecycle.preStop.sleep` of a running container (other preStop handlers
    /// are not run by the stand-in).
    fn pre_stop_sleep(&self) -> Duration {
        self.containers
            .iter()
            .filter(|c| c.pid.is_some())
            .filter_map(|c| c.spec.lifecycle.as_ref()?.pre_stop.as_ref()?.sleep.as_ref())
            .map(|s| Duration::from_secs(s.seconds.max(0) as u64))
            .max()
            .unwrap_or_default()
    }

    /// Frees the CPU groups and the network namespace.
    async fn release(&mut self) {
        for c in &mut self.containers {
            if let Err(e) = c.cgroup.remove() {
                tracing::warn!("{}/{}: {e}", self.namespace, self.name);
            }
        }
        if let Some(s) = self.sandbox.take() {
            self.rt.network.release(&s).await;
        }
    }

    async fn delete_object(&self) {
        let api: Api<Pod> = Api::namespaced(self.rt.client.clone(), &self.namespace);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&self.name, &dp).await {
            Ok(_) => tracing::info!("pod {}/{} deleted", self.namespace, self.name),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => tracing::warn!("deleting pod {}/{}: {e}", self.namespace, self.name),
        }
    }
}

/// The next stop request; a dropped sender (the stand-in stopping) is a shutdown.
async fn next_stop(stop: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(why) = *stop.borrow_and_update() {
            return why;
        }
        if stop.changed().await.is_err() {
            return Stop::Shutdown;
        }
    }
}
