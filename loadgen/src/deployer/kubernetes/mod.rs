//! The Kubernetes deployer: each step sets a Deployment's `spec.replicas` and one container's
//! CPU request = limit (or no limit) by server-side apply (field manager `loadgen`), waits for
//! that rollout ([`rollout`]), and hands the step the Ready pods of the new ReplicaSet
//! ([`pods`]). Before the first step it reads and keeps the original shape ([`spec`]), also in
//! an annotation on the Deployment, and refuses a Deployment someone else's HPA scales
//! ([`hpa`]). An autoscale step rolls out to its minimum; as its attack starts, loadgen's own
//! HPA is applied and the scaling sampled once a second ([`scale`]); the HPA is deleted before
//! the next step deploys and at restore. After
//! the last step — and on error, Ctrl-C and SIGTERM, which end the run through the same path —
//! [`KubernetesDeployer::restore`] applies the original back. The whole run holds the
//! Deployment's coordination Lease ([`lease`]), so a second run cannot interleave its steps.
//!
//! The client comes from `KUBECONFIG` or the in-cluster config (`kube::Client::try_default`);
//! unit tests hand in a `tower-test` mock (for call sequences a real server cannot be made to
//! produce); the integration tests run against the real control plane of `k8s/testbed`.

pub mod drift;
pub mod hpa;
pub mod job;
pub mod lease;
pub mod pods;
pub mod rollout;
pub mod scale;
pub mod spec;
#[cfg(test)]
mod tests;
pub mod trouble;

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment as K8sDeployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use serde_json::json;
use tokio::time::Instant;

pub use pods::PodTarget;
pub use scale::ScaleWatch;
use spec::{Shape, FIELD_MANAGER};

use super::Deployment;
use crate::plan::{KubernetesTarget, Topology};

/// How long one step's rollout may take by default (`[target] rollout_timeout`): the plan's.
pub use crate::plan::ROLLOUT_TIMEOUT as ROLLOUT_BOUND;

/// The deployer's API client, handed to what else a step creates on the cluster.
#[derive(Clone)]
pub struct ClusterClient(pub Client);

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterClient(..)")
    }
}

/// What went wrong talking to the cluster, or what the cluster refused.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("no Kubernetes client (KUBECONFIG or the in-cluster config): {0}")]
    Client(#[source] kube::Error),
    #[error("kubernetes api: {what} {name}: {source}")]
    Api {
        what: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("deployment {deployment} has no container {container} (it has: {})", .found.join(", "))]
    NoContainer {
        deployment: String,
        container: String,
        found: Vec<String>,
    },
    #[error(
        "horizontalpodautoscaler {hpa} scales deployment {deployment}: it would fight the \
         fixed replica count of every step, and an autoscale step's own HPA; delete it for \
         the campaign (`kubectl -n {namespace} delete hpa {hpa}`: autoscale steps apply their \
         own) or observe it with the autoscale overlay"
    )]
    Hpa {
        hpa: String,
        deployment: String,
        namespace: String,
    },
    #[error(
        "rollout of deployment {deployment} to {replicas} replica(s) not complete within \
         {bound:?}: {state}"
    )]
    RolloutTimeout {
        deployment: String,
        replicas: i32,
        bound: Duration,
        state: String,
    },
    #[error("rollout of deployment {deployment} failed: {why}")]
    RolloutFailed { deployment: String, why: String },
    #[error("deployment {0} was deleted while loadgen waited for its rollout")]
    Deleted(String),
    #[error(
        "the Service at {url} accepted no connection within the rollout bound after the pods \
         were Ready ({last}): its endpoints never reached the proxy"
    )]
    NotRouted { url: String, last: String },
    #[error("watch: {0}")]
    Watch(String),
    #[error("selector: {0}")]
    Selector(String),
    #[error("deployment {deployment} has no ReplicaSet at its revision {revision}")]
    NoReplicaSet {
        deployment: String,
        revision: String,
    },
    #[error("expected {expected} ready pod(s) of the new ReplicaSet ({selector}), found {found}")]
    Pods {
        selector: String,
        expected: usize,
        found: usize,
    },
    #[error("annotation {0}")]
    Annotation(String),
    #[error("the deployment did not take the original back: expected {expected}, it has {got}")]
    NotRestored { expected: String, got: String },
    #[error("interrupted while waiting for the rollout")]
    Interrupted,
    #[error("{0}")]
    GeneratorImage(String),
    #[error(
        "another run is load-testing this Deployment: lease {lease} is held by {holder} \
         (it expires in {expires_in_s:.0} s unless renewed); wait for that run to end, or, if \
         it was killed, for its lease to expire"
    )]
    LeaseHeld {
        lease: String,
        holder: String,
        expires_in_s: f64,
    },
}

impl KubeError {
    /// An adapter for `map_err` naming the call and the object.
    pub(crate) fn api<'a>(
        what: &'static str,
        name: &'a str,
    ) -> impl FnOnce(kube::Error) -> KubeError + 'a {
        move |source| KubeError::Api {
            what,
            name: name.to_string(),
            source,
        }
    }
}

/// Drives one Deployment through a campaign's steps.
pub struct KubernetesDeployer {
    target: KubernetesTarget,
    client: Option<Client>,
    /// The shape to restore; set by [`KubernetesDeployer::prepare`].
    original: Option<Shape>,
    rollout_bound: Duration,
    stop: tokio_util::sync::CancellationToken,
    /// loadgen's HPA exists (an autoscale step applied it): delete it before the next step
    /// and at restore.
    hpa_live: bool,
    /// Whether [`Self::prepare`] takes the Deployment's Lease (not on a scripted mock, whose
    /// call sequences are the Deployment's own; the Lease is proven on the testbed).
    take_lease: bool,
    /// The Lease this run holds, from prepare to restore.
    lease: Option<lease::Held>,
    /// Said once, before the first step: a GitOps controller manages the Deployment.
    pub(crate) gitops: Option<String>,
    /// The scenario's TLS keys, for an `https://` Service URL.
    tls: Option<loadgen_engine::tls::TlsSpec>,
}

impl std::fmt::Debug for KubernetesDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesDeployer")
            .field("target", &self.target)
            .field("original", &self.original)
            .finish_non_exhaustive()
    }
}

impl KubernetesDeployer {
    /// A deployer whose client is made from the environment at [`Self::prepare`].
    pub fn new(target: &KubernetesTarget) -> Self {
        Self {
            target: target.clone(),
            client: None,
            original: None,
            rollout_bound: target.rollout_timeout,
            stop: tokio_util::sync::CancellationToken::new(),
            hpa_live: false,
            take_lease: true,
            lease: None,
            gitops: None,
            tls: None,
        }
    }

    /// The TLS settings its deployments carry when the Service URL is `https://`.
    pub fn with_tls(mut self, tls: &loadgen_engine::tls::TlsSpec) -> Self {
        self.tls = self
            .target
            .service_url
            .starts_with("https://")
            .then(|| tls.clone());
        self
    }

    /// A deployer that does not take the Deployment's Lease (a scripted mock answers only the
    /// Deployment's calls).
    pub fn without_lease(mut self) -> Self {
        self.take_lease = false;
        self
    }

    /// A deployer talking through `client` (a mock in tests).
    pub fn with_client(target: &KubernetesTarget, client: Client) -> Self {
        Self {
            client: Some(client),
            ..Self::new(target)
        }
    }

    /// Another bound on each rollout than [`ROLLOUT_BOUND`].
    pub fn with_rollout_bound(mut self, bound: Duration) -> Self {
        self.rollout_bound = bound;
        self
    }

    /// The shape kept to restore, once prepared.
    pub fn original(&self) -> Option<&Shape> {
        self.original.as_ref()
    }

    async fn client(&mut self) -> Result<Client, KubeError> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let c = Client::try_default().await.map_err(KubeError::Client)?;
        self.client = Some(c.clone());
        Ok(c)
    }

    fn deployments(&self, client: &Client) -> Api<K8sDeployment> {
        Api::namespaced(client.clone(), &self.target.namespace)
    }

    /// Before the first step: takes the Deployment's Lease (refused while another run holds
    /// it), refuses a Deployment an HPA scales, reads the original shape (or the one a killed
    /// run kept in the annotation) and records it in the annotation. `stop` cuts a rollout wait
    /// short. Returns what the run should report (a killed run's leftovers). On an error the
    /// Lease is released again.
    pub async fn prepare(
        &mut self,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<Vec<String>, KubeError> {
        self.stop = stop;
        let mut notes = self.take_lease().await?;
        match self.keep_original().await {
            Ok(more) => {
                notes.extend(more);
                Ok(notes)
            }
            Err(e) => {
                self.release_lease().await;
                Err(e)
            }
        }
    }

    /// Takes the Deployment's Lease (once), then deletes the generator Jobs a killed run left
    /// for it (none can be a live run's: that run would hold the Lease). Notes say what was
    /// taken over and deleted.
    async fn take_lease(&mut self) -> Result<Vec<String>, KubeError> {
        if !self.take_lease || self.lease.is_some() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let ns = &self.target.namespace;
        let api = Api::namespaced(client.clone(), ns);
        let (held, note) = lease::acquire(&api, &self.target.deployment).await?;
        self.lease = Some(held);
        let mut notes: Vec<String> = note.into_iter().collect();
        match job::sweep(&Api::namespaced(client, ns), &self.target.deployment).await {
            Ok(swept) => notes.extend(swept),
            Err(e) => {
                self.release_lease().await;
                return Err(e);
            }
        }
        Ok(notes)
    }

    async fn release_lease(&mut self) {
        if let Some(held) = self.lease.take() {
            held.release().await;
        }
    }

    /// The part of [`Self::prepare`] under the Lease.
    async fn keep_original(&mut self) -> Result<Vec<String>, KubeError> {
        let client = self.client().await?;
        let name = self.target.deployment.clone();
        let hpas = self.hpas(&client);
        let (foreign, left) = hpa::targeting(&hpas, &name).await?;
        if let Some(hpa) = foreign {
            return Err(KubeError::Hpa {
                hpa,
                deployment: name,
                namespace: self.target.namespace.clone(),
            });
        }
        let mut notes = Vec::new();
        if let Some(left) = left {
            hpa::delete(&hpas, &name).await?;
            notes.push(format!(
                "horizontalpodautoscaler {left} was left by a run that could not delete it \
                 (killed): deleted before the first step"
            ));
        }
        let api = self.deployments(&client);
        let live = api.get(&name).await.map_err(KubeError::api("get", &name))?;
        self.gitops = drift::gitops(&live);
        let now = Shape::of(&live, &self.target.container)?;
        let original = match spec::kept_original(&live)? {
            Some(kept) if kept.container == self.target.container => {
                notes.push(format!(
                    "deployment {name} still carries {} from a run that could not restore it \
                     (killed): it is at {now}; the original kept there, {kept}, is restored at \
                     the end of this run",
                    spec::ORIGINAL_ANNOTATION
                ));
                kept
            }
            Some(kept) => {
                return Err(KubeError::Annotation(format!(
                    "{} on deployment {name} is for container {}, not {}: run `loadgen \
                     restore` with the scenario that left it",
                    spec::ORIGINAL_ANNOTATION,
                    kept.container,
                    self.target.container
                )))
            }
            None => now,
        };
        // Who owned what before this run (a killed run's annotation may predate keeping it).
        let original = if original.owners.is_empty() {
            original.owned_as(&live)
        } else {
            original
        };
        let body = spec::annotation_body(&original);
        api.patch(&name, &update_params(), &Patch::Merge(&body))
            .await
            .map_err(KubeError::api("annotate the original on", &name))?;
        self.original = Some(original);
        Ok(notes)
    }

    /// Sets `topology` on the Deployment and returns once it has rolled out and its new pods
    /// are Ready (within the rollout bound).
    pub async fn deploy(&mut self, topology: &Topology) -> Result<Deployment, KubeError> {
        let original = self
            .original
            .clone()
            .ok_or_else(|| KubeError::Annotation("deploy before prepare".into()))?;
        let client = self.client().await?;
        // The last step's HPA would fight this step's replica count (or its own HPA's start).
        self.delete_hpa(&client).await?;
        let deadline = Instant::now() + self.rollout_bound;
        let shape = Shape::for_step(topology, &original);
        let patched = self.apply(&client, &shape, Some(&original)).await?;
        let generation = patched.metadata.generation.unwrap_or(0);
        let api = self.deployments(&client);
        let name = &self.target.deployment;
        let pods_api: Api<Pod> = Api::namespaced(client.clone(), &self.target.namespace);
        let wait = rollout::wait(
            &api,
            &pods_api,
            name,
            generation,
            shape.replicas,
            self.rollout_bound,
        );
        let done = tokio::select! {
            d = wait => d?,
            _ = self.stop.cancelled() => return Err(KubeError::Interrupted),
        };
        let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), &self.target.namespace);
        let hash = pods::new_replica_set_hash(&rs, &done).await?;
        let pod_api: Api<Pod> = Api::namespaced(client.clone(), &self.target.namespace);
        let selector = pods::selector(&done)?;
        let found = pods::wait_step_pods(
            &pod_api,
            &selector,
            &hash,
            topology.replicas as usize,
            self.target.metrics_port,
            deadline,
        )
        .await?;
        pods::wait_routed(&self.target.service_url, deadline).await?;
        let mut deployment = Deployment::cluster(
            self.target.service_url.clone(),
            found,
            topology.cpu_limit_cores,
        );
        deployment.cluster = Some(ClusterClient(client.clone()));
        deployment.tls = self.tls.clone();
        let ran = drift::begin(
            api.clone(),
            pod_api,
            (name, &self.target.container),
            format!("{selector},{}={hash}", pods::POD_TEMPLATE_HASH),
            done.metadata.generation.unwrap_or(generation),
            (topology.cpu_limit_cores, topology.autoscale.is_some()),
        )
        .await?;
        deployment.drift = Some(ran.watch);
        deployment.ran_differs = ran.differs;
        if let Some(a) = topology.autoscale {
            // Applied by the step as its attack starts (scale.rs); deleted from here on.
            self.hpa_live = true;
            deployment.scale = Some(ScaleWatch {
                deployments: self.deployments(&client),
                hpas: self.hpas(&client),
                namespace: self.target.namespace.clone(),
                deployment: self.target.deployment.clone(),
                autoscale: a,
            });
        }
        Ok(deployment)
    }

    fn hpas(&self, client: &Client) -> Api<HorizontalPodAutoscaler> {
        Api::namespaced(client.clone(), &self.target.namespace)
    }

    /// Deletes loadgen's HPA when an autoscale step applied it.
    async fn delete_hpa(&mut self, client: &Client) -> Result<(), KubeError> {
        if self.hpa_live {
            hpa::delete(&self.hpas(client), &self.target.deployment).await?;
            self.hpa_live = false;
        }
        Ok(())
    }

    /// Applies `shape` (keeping `original` in the annotation, or dropping it when `None`) and
    /// deletes CPU fields the shape has none of that another manager still holds.
    async fn apply(
        &self,
        client: &Client,
        shape: &Shape,
        original: Option<&Shape>,
    ) -> Result<K8sDeployment, KubeError> {
        let api = self.deployments(client);
        let name = &self.target.deployment;
        let body = spec::apply_body(name, shape, original);
        let mut patched = api
            .patch(name, &apply_params(), &Patch::Apply(&body))
            .await
            .map_err(KubeError::api("apply", name))?;
        if let Some(remove) = spec::leftover_cpu(&patched, shape)? {
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            patched = api
                .patch(name, &params, &Patch::Strategic(&remove))
                .await
                .map_err(KubeError::api("remove the cpu fields of", name))?;
        }
        Ok(patched)
    }

    /// Applies the original shape back and drops the annotation, then releases the Lease
    /// (whatever the restore's outcome: an unrestored Deployment keeps its annotation for
    /// `loadgen restore`, which takes the Lease itself). A no-op before [`Self::prepare`]
    /// (nothing was changed).
    pub async fn restore(&mut self) -> Result<Option<Shape>, KubeError> {
        let restored = self.restore_original().await;
        self.release_lease().await;
        restored
    }

    async fn restore_original(&mut self) -> Result<Option<Shape>, KubeError> {
        let Some(original) = self.original.clone() else {
            return Ok(None);
        };
        let client = self.client().await?;
        self.delete_hpa(&client).await?;
        let back = self.apply(&client, &original, None).await?;
        let got = Shape::of(&back, &original.container)?;
        if !got.same_as(&original) {
            return Err(KubeError::NotRestored {
                expected: original.to_string(),
                got: got.to_string(),
            });
        }
        self.hand_back(&client, &original).await?;
        self.original = None;
        Ok(Some(original))
    }

    /// After the original values are back: drops the annotation and gives each field back to
    /// the manager that owned it before the run, so loadgen owns nothing (a next run's first
    /// write cannot release, and so delete, a field) and `kubectl apply` finds its own fields.
    async fn hand_back(&self, client: &Client, original: &Shape) -> Result<(), KubeError> {
        let api = self.deployments(client);
        let name = &self.target.deployment;
        let drop_annotation = json!({ "metadata": { "annotations": {
            spec::ORIGINAL_ANNOTATION: null } } });
        let live = api
            .patch(name, &update_params(), &Patch::Merge(&drop_annotation))
            .await
            .map_err(KubeError::api("drop the original annotation of", name))?;
        let owners = json!({ "metadata": {
            "managedFields": spec::handed_back(&original.owners, &live) } });
        api.patch(name, &update_params(), &Patch::Merge(&owners))
            .await
            .map_err(KubeError::api(
                "hand the fields back to their owners on",
                name,
            ))?;
        Ok(())
    }

    /// `loadgen restore`: applies back the original a killed run kept in the annotation, under
    /// the Deployment's Lease (refused while a live run holds it: that run restores itself).
    /// `None` when there is none (nothing to restore). Notes say whose Lease was taken over.
    pub async fn restore_kept(&mut self) -> Result<(Option<Shape>, Vec<String>), KubeError> {
        let notes = self.take_lease().await?;
        let restored = self.restore_kept_original().await;
        self.release_lease().await;
        Ok((restored?, notes))
    }

    async fn restore_kept_original(&mut self) -> Result<Option<Shape>, KubeError> {
        let client = self.client().await?;
        let name = self.target.deployment.clone();
        let live = self
            .deployments(&client)
            .get(&name)
            .await
            .map_err(KubeError::api("get", &name))?;
        let Some(kept) = spec::kept_original(&live)? else {
            return Ok(None);
        };
        self.original = Some(kept);
        self.restore_original().await
    }
}

/// A plain (merge) patch as `loadgen`: an update, which never releases fields by leaving them
/// out.
pub(super) fn update_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// Server-side apply as `loadgen`, forced: the fields it sets were written by another manager
/// (`kubectl apply` of the manifests), and the campaign must own them for its duration.
pub(super) fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}
