//! One campaign per Deployment at a time: a coordination Lease `loadgen-<deployment>` in the
//! target's namespace, taken before the run changes anything, renewed while it lasts and
//! released after the original is restored. A second run (or a `loadgen restore`) against the
//! same Deployment finds it held and is refused, naming the holder; a Lease a killed run left
//! is taken over once it has expired, and the run says so. Two runs interleaving their applies
//! would each measure the other's shape and restore the wrong original.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use tokio_util::sync::CancellationToken;

use super::KubeError;

/// How long a Lease holds without renewal: a killed run's Lease is free this long after its
/// last renewal.
pub const DURATION_S: i32 = 30;
/// How often a held Lease is renewed (a third of its duration: two renewals may fail).
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// The Lease's name for a Deployment (the Role grants get/update/delete on it by name).
pub fn name(deployment: &str) -> String {
    format!("loadgen-{deployment}")
}

/// This machine's name (a pod's name, in a cluster).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into())
}

/// Who this run is: `loadgen <host> pid <pid>`.
fn identity() -> String {
    format!("loadgen {} pid {}", host(), std::process::id())
}

/// True when `holder` names a loadgen on this host whose process no longer runs (killed):
/// its Lease need not be waited out. A holder elsewhere cannot be checked.
fn holder_is_gone(holder: &str) -> bool {
    let mut words = holder.split(' ');
    let (Some("loadgen"), Some(h), Some("pid"), Some(pid)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    if h != host() {
        return false;
    }
    // A pid reused by another program is not that loadgen either.
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_or(true, |comm| comm.trim() != "loadgen")
}

/// A Lease this run holds; renewed in the background until [`Held::release`].
pub struct Held {
    api: Api<Lease>,
    name: String,
    identity: String,
    stop: CancellationToken,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Takes the Lease of `deployment`: created when absent, taken over when expired (the note
/// says whose it was), refused when another run holds it.
pub async fn acquire(
    api: &Api<Lease>,
    deployment: &str,
) -> Result<(Held, Option<String>), KubeError> {
    let name = name(deployment);
    let identity = identity();
    let fresh = lease(&name, &identity, 0, None);
    let note = match api.create(&PostParams::default(), &fresh).await {
        Ok(_) => None,
        Err(kube::Error::Api(e)) if e.code == 409 => Some(take_over(api, &name, &identity).await?),
        Err(e) => return Err(KubeError::api("create lease", &name)(e)),
    };
    let held = Held {
        api: api.clone(),
        name,
        identity,
        stop: CancellationToken::new(),
    };
    held.keep_renewed();
    Ok((held, note))
}

/// The existing Lease `name`, taken over if it expired (with a note), else refused.
async fn take_over(api: &Api<Lease>, name: &str, identity: &str) -> Result<String, KubeError> {
    let live = api
        .get(name)
        .await
        .map_err(KubeError::api("get lease", name))?;
    let spec = live.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let left_s = remaining_s(&spec, Timestamp::now());
    let gone = holder_is_gone(&holder);
    if left_s > 0.0 && !holder.is_empty() && !gone {
        return Err(KubeError::LeaseHeld {
            lease: name.to_string(),
            holder,
            expires_in_s: left_s,
        });
    }
    let transitions = spec.lease_transitions.unwrap_or(0) + 1;
    let mut next = lease(name, identity, transitions, Some(&live.metadata));
    // The resourceVersion makes the replace fail if another run took it over meanwhile.
    next.metadata.resource_version = live.metadata.resource_version.clone();
    let why = if left_s > 0.0 {
        format!("whose process on this host no longer runs ({left_s:.0} s before it expired)")
    } else {
        format!("which had expired {:.0} s ago", -left_s)
    };
    match api.replace(name, &PostParams::default(), &next).await {
        Ok(_) => Ok(format!(
            "lease {name} of {}, {why} (a run that was killed): taken over",
            if holder.is_empty() { "nobody" } else { &holder },
        )),
        Err(kube::Error::Api(e)) if e.code == 409 => Err(KubeError::LeaseHeld {
            lease: name.to_string(),
            holder: "another run that took it over at the same moment".into(),
            expires_in_s: f64::from(DURATION_S),
        }),
        Err(e) => Err(KubeError::api("take over lease", name)(e)),
    }
}

/// Seconds until the Lease expires at `now` (negative: expired that long ago). A Lease with
/// no renewal time counts from its acquisition; with neither it is expired.
pub fn remaining_s(spec: &LeaseSpec, now: Timestamp) -> f64 {
    let Some(since) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return f64::NEG_INFINITY;
    };
    let duration = f64::from(spec.lease_duration_seconds.unwrap_or(DURATION_S));
    let age = now.duration_since(since.0).as_secs_f64();
    duration - age
}

/// A Lease held by `identity` from now.
fn lease(name: &str, identity: &str, transitions: i32, meta: Option<&ObjectMeta>) -> Lease {
    let now = MicroTime(Timestamp::now());
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some([("app.kubernetes.io/managed-by".to_string(), "loadgen".into())].into()),
            ..meta.cloned().unwrap_or_default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(identity.to_string()),
            lease_duration_seconds: Some(DURATION_S),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }),
    }
}

impl Held {
    /// Renews the Lease every [`RENEW_EVERY`] until released; a renewal that finds another
    /// holder stops (the run is said to have lost it).
    fn keep_renewed(&self) {
        let (api, name, identity, stop) = (
            self.api.clone(),
            self.name.clone(),
            self.identity.clone(),
            self.stop.clone(),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(RENEW_EVERY) => {}
                }
                match renew(&api, &name, &identity).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!("lease {name}: another run holds it now; not renewed");
                        return;
                    }
                    Err(e) => tracing::warn!("lease {name}: renewal failed: {e}"),
                }
            }
        });
    }

    /// Stops renewing and deletes the Lease if this run still holds it (a failure only means
    /// it expires [`DURATION_S`] s later: warned, not an error of the run).
    pub async fn release(self) {
        self.stop.cancel();
        let Ok(live) = self.api.get(&self.name).await else {
            return;
        };
        let ours = live
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.identity.as_str());
        if !ours {
            return;
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: live.metadata.resource_version.clone(),
                uid: live.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = self.api.delete(&self.name, &params).await {
            tracing::warn!(
                "lease {}: not released ({e}); it expires by itself",
                self.name
            );
        }
    }
}

/// One renewal: `Ok(false)` when the Lease is no longer this run's.
async fn renew(api: &Api<Lease>, name: &str, identity: &str) -> Result<bool, kube::Error> {
    let mut live = api.get(name).await?;
    let Some(spec) = live.spec.as_mut() else {
        return Ok(false);
    };
    if spec.holder_identity.as_deref() != Some(identity) {
        return Ok(false);
    }
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    api.replace(name, &PostParams::default(), &live).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(renewed_s_ago: Option<i64>, acquired_s_ago: Option<i64>) -> LeaseSpec {
        let now = Timestamp::now();
        let ago = |s: i64| MicroTime(now - k8s_openapi::jiff::SignedDuration::from_secs(s));
        LeaseSpec {
            lease_duration_seconds: Some(30),
            renew_time: renewed_s_ago.map(ago),
            acquire_time: acquired_s_ago.map(ago),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_lease_expires_its_duration_after_the_last_renewal() {
        let now = Timestamp::now();
        let fresh = remaining_s(&spec(Some(5), Some(100)), now);
        assert!((24.0..=25.5).contains(&fresh), "{fresh}");
        let stale = remaining_s(&spec(Some(45), Some(100)), now);
        assert!((-15.5..=-14.0).contains(&stale), "{stale}");
        // Never renewed: counted from its acquisition.
        let acquired = remaining_s(&spec(None, Some(10)), now);
        assert!((19.0..=20.5).contains(&acquired), "{acquired}");
        assert_eq!(remaining_s(&spec(None, None), now), f64::NEG_INFINITY);
    }

    #[test]
    fn only_a_loadgen_of_this_host_that_no_longer_runs_is_gone() {
        let host = host();
        // pid 1 runs, and is not loadgen: a pid reused by another program.
        assert!(holder_is_gone(&format!("loadgen {host} pid 1")));
        // The test binary runs, but is not named loadgen either; a real holder is this run.
        let me = std::process::id();
        assert!(holder_is_gone(&format!("loadgen {host} pid {me}")));
        assert!(holder_is_gone(&format!("loadgen {host} pid 4194305")));
        assert!(!holder_is_gone("loadgen another-host pid 4194305"));
        assert!(!holder_is_gone("kube-controller-manager"));
        assert!(!holder_is_gone(""));
    }
}
