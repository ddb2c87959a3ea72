//! The cgroups of a local deployment, shared by polymetrie's replicas and a user's command: a
//! deployment's sequence number (part of every group's and folder's name), the layout its
//! groups go in (tried with a group of the step's limit, since a hierarchy can exist yet not be
//! writable), the groups a killed loadgen left swept, and one replica's group with the step's
//! CFS quota.

use std::sync::atomic::{AtomicU32, Ordering};

use super::DeployError;
use crate::plan::Topology;
use cpu_cgroup::{self as cgroup, Cgroup, CgroupLayout};

/// Deploy sequence numbers, unique in this process: part of each cgroup's name.
static DEPLOY_SEQ: AtomicU32 = AtomicU32::new(0);

/// A new local deployment's sequence number (unique in this process: part of every group's and
/// folder's name) and its cgroup layout, once groups a killed loadgen left are swept (said in
/// `swept`).
pub(super) fn begin(
    root: &std::path::Path,
    topology: &Topology,
    swept: &mut Vec<String>,
) -> Result<(u32, Option<CgroupLayout>), DeployError> {
    check_topology(topology)?;
    let seq = DEPLOY_SEQ.fetch_add(1, Ordering::Relaxed);
    let layout = cgroup_layout(root, topology, seq)?;
    if let Some(layout) = &layout {
        swept.extend(cgroup::remove_stale(layout));
    }
    Ok((seq, layout))
}

/// A topology local replicas can run: at least one replica, no autoscaler, a positive limit.
fn check_topology(topology: &Topology) -> Result<(), DeployError> {
    if topology.replicas == 0 {
        return Err(DeployError::InvalidTopology("replicas must be ≥ 1".into()));
    }
    if topology.autoscale.is_some() {
        // The plan refuses these already; a library caller gets the same answer.
        return Err(DeployError::InvalidTopology(
            "an autoscale step needs a Kubernetes Deployment and its HPA; local replicas \
             have no autoscaler"
                .into(),
        ));
    }
    if let Some(limit) = topology.cpu_limit_cores {
        if !(limit.is_finite() && limit > 0.0) {
            return Err(DeployError::InvalidTopology(format!(
                "cpu limit must be > 0 cores, got {limit}"
            )));
        }
    }
    Ok(())
}

/// The cgroup layout the step's replicas run in, tried with a group of the step's limit: the
/// hierarchy may exist yet not be writable (not root, read-only mount), which only creating
/// a group reveals. A limited step without one is an error; an unlimited one runs
/// unaccounted.
fn cgroup_layout(
    root: &std::path::Path,
    topology: &Topology,
    seq: u32,
) -> Result<Option<CgroupLayout>, DeployError> {
    let usable = CgroupLayout::detect(root).and_then(|layout| {
        let trial = format!("{}{}-{seq}-check", cgroup::NAME_PREFIX, std::process::id());
        Cgroup::create(&layout, &trial, topology.cpu_limit_cores).map(|_| layout)
    });
    match usable {
        Ok(layout) => Ok(Some(layout)),
        Err(e) => match topology.cpu_limit_cores {
            Some(limit) => Err(DeployError::CgroupUnavailable {
                limit,
                reason: e.to_string(),
            }),
            None => {
                tracing::warn!("{e}; replicas run without CPU accounting");
                Ok(None)
            }
        },
    }
}

/// The cgroup of one replica, with the step's CFS quota. A limited step whose cgroup cannot be
/// made fails (it never runs unlimited and reports as limited).
pub(super) fn replica_cgroup(
    layout: &CgroupLayout,
    name: &str,
    topology: &Topology,
) -> Result<Cgroup, DeployError> {
    Cgroup::create(layout, name, topology.cpu_limit_cores).map_err(|e| {
        match topology.cpu_limit_cores {
            Some(limit) => DeployError::CgroupUnavailable {
                limit,
                reason: e.to_string(),
            },
            None => DeployError::Cgroup(e.to_string()),
        }
    })
}
