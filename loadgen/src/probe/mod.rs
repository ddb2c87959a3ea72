//! Probes: readings taken before and after each step (business counter, CPU and throttling,
//! Prometheus) whose differences become a step's evidence.
//!
//! A replica's CPU is read from its cgroup files when loadgen started it, and from the
//! service's own `polymetrie_cgroup_cpu_*` counters always: the one view of a cluster pod,
//! which is reached at its IP and metrics port; the business counter of a cluster comes
//! through its Service.
//!
//! [`snapshot`] never fails: a value it cannot read is `None`, and [`diff`] turns two snapshots
//! into the step's [`CounterReading`] and [`CpuReading`], leaving unmeasured values `None`.

pub mod business;
pub mod counter;
pub mod cpu;
pub mod metrics_api;
pub mod prometheus;

use std::time::{Duration, Instant, SystemTime};

use crate::deployer::{CgroupCpu, Deployment};
use crate::plan::counter::Counter;
use crate::plan::Store;
use loadgen_model::result::{CounterReading, CpuReading};

/// Everything read from a deployment at one instant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the CPU counters were read (HTTP reads follow within the probe timeout).
    pub taken_at: Instant,
    /// The same instant on the wall clock (metrics API samples carry wall-clock times).
    pub taken_wall: SystemTime,
    /// The business counter: the store's total for the site.
    pub counter: Option<u64>,
    /// Our replicas, or a cluster step's pods (empty for a URL target).
    pub replicas: Vec<ReplicaSnapshot>,
    /// The whole machine's CPU counters (not read for a cluster: its pods run elsewhere).
    pub node: Option<cpu::NodeCpu>,
    /// True for a URL target: nothing is known of its replicas, no CPU is attributed.
    pub external: bool,
}

/// One replica at one instant.
#[derive(Debug, Clone, Default)]
pub struct ReplicaSnapshot {
    pub index: u32,
    /// Clicks this replica stored (`polymetrie_clicks_total{site}`).
    pub clicks: Option<u64>,
    /// HTTP requests this replica answered.
    pub requests: Option<u64>,
    /// Its cgroup's CPU counters (`None` without a cgroup).
    pub cpu: Option<CgroupCpu>,
    /// The site total as this replica's store reports it.
    pub site_clicks: Option<u64>,
    /// Its cgroup's counters as the service exports them in `/metrics`.
    pub service_cpu: Option<CgroupCpu>,
    /// The pod and its node, on a cluster.
    pub pod: Option<(String, Option<String>)>,
    /// The pod's latest sample from the resource metrics API, on a cluster.
    pub pod_metrics: Option<metrics_api::PodMetricsSample>,
}

/// `before` with its CPU readings, and their instant, taken from `at`; its counts kept. A
/// sharded step's shards start well after the step's first snapshot (their processes or Job
/// pods are launched, scheduled and started first): the CPU of that set-up is not the load's,
/// and averaged over the longer window it would understate the load's by as much.
pub fn rebase_cpu(before: &mut Snapshot, at: Snapshot) {
    before.taken_at = at.taken_at;
    before.taken_wall = at.taken_wall;
    before.node = at.node;
    for r in &mut before.replicas {
        if let Some(a) = at.replicas.iter().find(|a| a.index == r.index) {
            r.cpu = a.cpu;
            r.service_cpu = a.service_cpu;
            r.pod_metrics = a.pod_metrics;
        }
    }
}

/// Reads the counter and CPU of `deployment`. All replicas are read concurrently.
pub async fn snapshot(deployment: &Deployment, counter: &Counter) -> Snapshot {
    // Local files first, right at `taken_at`: CPU per wall time must share one clock reading.
    let taken_at = Instant::now();
    let taken_wall = SystemTime::now();
    let cluster = !deployment.pods.is_empty();
    let node = if cluster { None } else { cpu::read_node() };
    let mut cpus: Vec<Option<CgroupCpu>> = deployment
        .replicas
        .iter()
        .map(|r| r.cgroup.as_ref().map(|g| g.read_cpu()))
        .collect();
    let pods: Vec<Option<(String, Option<String>)>> = if cluster {
        cpus = vec![None; deployment.pods.len()];
        deployment
            .pods
            .iter()
            .map(|p| Some((p.name.clone(), p.node.clone())))
            .collect()
    } else {
        vec![None; deployment.replicas.len()]
    };
    let ((total, counters), mut samples) =
        tokio::join!(read_counters(deployment, counter), pod_metrics(deployment));
    samples.resize(counters.len(), None);
    let replicas = counters
        .into_iter()
        .zip(cpus)
        .zip(pods)
        .zip(samples)
        .enumerate()
        .map(
            |(i, ((((c, site_clicks), cpu), pod), pod_metrics))| ReplicaSnapshot {
                index: deployment.replicas.get(i).map_or(i as u32, |r| r.index),
                clicks: c.clicks,
                requests: c.requests,
                cpu,
                site_clicks,
                service_cpu: c.cgroup,
                pod,
                pod_metrics,
            },
        )
        .collect();
    Snapshot {
        taken_at,
        taken_wall,
        counter: total,
        replicas,
        node,
        external: deployment.is_external() && !cluster,
    }
}

/// Each pod's latest resource-metrics sample (empty off a cluster), read concurrently.
async fn pod_metrics(deployment: &Deployment) -> Vec<Option<metrics_api::PodMetricsSample>> {
    let Some(client) = deployment.cluster.as_ref().map(|c| c.0.clone()) else {
        return Vec::new();
    };
    let reads = deployment.pods.iter().map(|p| {
        let client = client.clone();
        let (ns, name) = (p.namespace.clone(), p.name.clone());
        async move { metrics_api::read(&client, &ns, &name).await }
    });
    futures_util::future::join_all(reads).await
}

/// The business counter and each replica's own readings, by the kind of counter.
async fn read_counters(
    deployment: &Deployment,
    counter: &Counter,
) -> (Option<u64>, Vec<(counter::ReplicaCounters, Option<u64>)>) {
    match counter {
        Counter::Site(site) => read_site(deployment, site).await,
        Counter::None => (None, no_service_readings(deployment).await),
        _ => {
            let (total, per) = business::read(deployment, counter).await;
            let mut replicas = no_service_readings(deployment).await;
            for (r, v) in replicas.iter_mut().zip(&per) {
                r.0.clicks = *v;
            }
            if let Err(e) = &total {
                tracing::warn!("counter: {e}");
            }
            (total.ok(), replicas)
        }
    }
}

/// One empty reading per replica (or pod): a service that is not polymetrie exports no
/// per-replica counters loadgen knows; its replicas' CPU comes from their cgroups.
async fn no_service_readings(
    deployment: &Deployment,
) -> Vec<(counter::ReplicaCounters, Option<u64>)> {
    let n = if deployment.pods.is_empty() {
        deployment.replicas.len()
    } else {
        deployment.pods.len()
    };
    vec![(counter::ReplicaCounters::default(), None); n]
}

/// polymetrie's counter: the site total, and each replica's own counters with its view of the
/// site total (a cluster pod's view is not asked: the Service's answer is the counter).
async fn read_site(
    deployment: &Deployment,
    site: &str,
) -> (Option<u64>, Vec<(counter::ReplicaCounters, Option<u64>)>) {
    let cluster = !deployment.pods.is_empty();
    if deployment.is_external() && !cluster {
        return (
            counter::site_clicks(&deployment.base_url, site, deployment.tls.as_ref()).await,
            Vec::new(),
        );
    }
    let urls: Vec<String> = if cluster {
        deployment
            .pods
            .iter()
            .map(|p| p.metrics_url.clone())
            .collect()
    } else {
        deployment.admin_urls()
    };
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|admin| {
            let site = site.to_string();
            tokio::spawn(async move {
                if cluster {
                    (counter::replica_counters(&admin, &site).await, None)
                } else {
                    tokio::join!(
                        counter::replica_counters(&admin, &site),
                        // The admin listener is plain HTTP, whatever the main one speaks.
                        counter::site_clicks(&admin, &site, None)
                    )
                }
            })
        })
        .collect();
    let mut replicas = Vec::with_capacity(tasks.len());
    for task in tasks {
        replicas.push(task.await.unwrap_or_default());
    }
    let counter = match deployment.store {
        _ if cluster => {
            counter::site_clicks(&deployment.base_url, site, deployment.tls.as_ref()).await
        }
        // Every replica reports the shared total: the first one that answered.
        Some(Store::Redis) => replicas.iter().find_map(|(_, total)| *total),
        // Each replica counts its own: the sum, only when every replica answered.
        _ => replicas.iter().map(|(_, total)| *total).sum(),
    };
    (counter, replicas)
}

/// How often [`settle`] re-reads the counters.
pub const SETTLE_POLL: Duration = Duration::from_millis(100);
/// How often [`settle`] re-reads a counter that comes through Prometheus: two equal readings
/// must straddle a scrape (a scrape interval of up to 2 s), or a count not yet scraped would
/// look settled.
pub const SETTLE_POLL_PROMQL: Duration = Duration::from_millis(2_500);

/// Waits (up to `bound`) until the service has finished the work still queued when the load
/// stopped — clicks whose client already gave up are still stored — by re-reading the counters
/// until two reads [`SETTLE_POLL`] apart agree, and updates the counter fields of `after`
/// with the final values. CPU readings and `taken_at` are left as they were, so CPU stays
/// averaged over the step alone. Returns false when the counters were still moving (or
/// unreadable) at the bound.
pub async fn settle(
    deployment: &Deployment,
    counter: &Counter,
    after: &mut Snapshot,
    bound: Duration,
) -> bool {
    if !counter.is_some() {
        return true;
    }
    let poll = match counter {
        Counter::Promql { .. } => SETTLE_POLL_PROMQL,
        _ => SETTLE_POLL,
    };
    // Through Prometheus, the last scrape may predate the step's last requests.
    let deadline = tokio::time::Instant::now() + bound.max(poll * 3);
    let mut unreadable = 0;
    loop {
        if tokio::time::Instant::now() + poll > deadline {
            return false;
        }
        tokio::time::sleep(poll).await;
        let (total, counters) = read_counters(deployment, counter).await;
        // A counter that cannot be read twice in a row (a replica gone, the store down) will
        // not settle by waiting: give up instead of polling a dead port until the bound.
        unreadable = if total.is_none() { unreadable + 1 } else { 0 };
        if unreadable >= 2 {
            after.counter = None;
            return false;
        }
        let unchanged = total.is_some()
            && total == after.counter
            && after
                .replicas
                .iter()
                .zip(&counters)
                .all(|(r, (c, _))| r.clicks == c.clicks);
        after.counter = total;
        for (r, (c, site_clicks)) in after.replicas.iter_mut().zip(counters) {
            r.clicks = c.clicks;
            r.requests = c.requests;
            r.site_clicks = site_clicks;
        }
        if unchanged {
            return true;
        }
    }
}

/// The step's counter and CPU readings from the snapshots before and after it. CPU is `None`
/// for a service we did not start. A counter that went backwards (a replica restarted, the
/// store was reset) has no delta: it is flagged, never a negative count.
pub fn diff(before: &Snapshot, after: &Snapshot) -> (Option<CounterReading>, Option<CpuReading>) {
    let (delta, went_back) = match (before.counter, after.counter) {
        (Some(b), Some(a)) if a < b => (None, true),
        (Some(b), Some(a)) => (Some(a as i64 - b as i64), false),
        _ => (None, false),
    };
    let pairs: Vec<(&ReplicaSnapshot, &ReplicaSnapshot)> = before
        .replicas
        .iter()
        .filter_map(|b| Some((b, after.replicas.iter().find(|a| a.index == b.index)?)))
        .collect();
    let counter = CounterReading {
        before: before.counter,
        after: after.counter,
        delta,
        went_back,
        per_replica: pairs
            .iter()
            .map(|(b, a)| a.clicks?.checked_sub(b.clicks?))
            .collect(),
    };
    if after.external || before.external {
        return (Some(counter), None);
    }

    let wall = after.taken_at.saturating_duration_since(before.taken_at);
    let span = (before.taken_wall, after.taken_wall);
    let per_replica: Vec<_> = pairs
        .iter()
        .map(|(b, a)| {
            let requests = a.requests.and_then(|x| x.checked_sub(b.requests?));
            cpu::replica_views(b, a, wall, span, requests)
        })
        .collect();
    let cores_used = per_replica
        .iter()
        .map(|r| r.cores_used)
        .sum::<Option<f64>>()
        .filter(|_| !per_replica.is_empty());
    let throttled_ratio = cpu::throttled_ratio(
        per_replica.iter().map(|r| r.nr_throttled).sum(),
        per_replica.iter().map(|r| r.nr_periods).sum(),
    );
    let node_cores_used = match (&before.node, &after.node) {
        (Some(b), Some(a)) => cpu::node_cores_used(b, a),
        _ => None,
    };
    let cpu = CpuReading {
        cores_used,
        throttled_ratio,
        per_replica,
        node_cores_used,
        generator: None,
        window_s: Some(wall.as_secs_f64()),
    };
    (Some(counter), Some(cpu))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn replica(
        index: u32,
        clicks: u64,
        requests: u64,
        usage_s: u64,
        periods: u64,
    ) -> ReplicaSnapshot {
        ReplicaSnapshot {
            index,
            clicks: Some(clicks),
            requests: Some(requests),
            cpu: Some(CgroupCpu {
                usage_ns: Some(usage_s * 1_000_000_000),
                nr_periods: Some(periods),
                nr_throttled: Some(periods / 2),
                throttled_ns: Some(0),
            }),
            site_clicks: Some(clicks),
            service_cpu: None,
            pod: None,
            pod_metrics: None,
        }
    }

    #[test]
    fn diff_gives_deltas_per_replica_and_totals() {
        let t0 = Instant::now();
        let before = Snapshot {
            taken_at: t0,
            taken_wall: SystemTime::now(),
            counter: Some(100),
            replicas: vec![replica(0, 40, 50, 1, 0), replica(1, 60, 70, 2, 0)],
            node: None,
            external: false,
        };
        let after = Snapshot {
            taken_at: t0 + Duration::from_secs(2),
            taken_wall: SystemTime::now() + Duration::from_secs(2),
            counter: Some(400),
            replicas: vec![replica(0, 140, 160, 2, 20), replica(1, 260, 280, 4, 20)],
            node: None,
            external: false,
        };
        let (counter, cpu) = diff(&before, &after);
        let counter = counter.unwrap();
        assert_eq!(counter.delta, Some(300));
        assert_eq!(counter.per_replica, vec![Some(100), Some(200)]);
        let cpu = cpu.unwrap();
        assert_eq!(cpu.per_replica[0].cores_used, Some(0.5));
        assert_eq!(cpu.per_replica[1].cores_used, Some(1.0));
        assert_eq!(cpu.cores_used, Some(1.5));
        assert_eq!(cpu.throttled_ratio, Some(0.5));
        assert_eq!(cpu.per_replica[1].requests, Some(210));
        assert_eq!(cpu.node_cores_used, None);
    }

    /// A pod of any service: no cgroup loadgen reads, no self-exported CPU; its CPU is the
    /// metrics API's sample when (and only when) the sample's window lies inside the step.
    #[test]
    fn a_pod_without_counters_takes_its_cpu_from_the_metrics_api() {
        let t0 = Instant::now();
        let w0 = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let mut pod = replica(0, 0, 0, 0, 0);
        pod.cpu = None;
        let snap = |at: Duration, sample_end: Option<Duration>| {
            let mut r = pod.clone();
            r.pod_metrics = sample_end.map(|e| metrics_api::PodMetricsSample {
                at: w0 + e,
                window: Duration::from_secs(10),
                cores: 0.42,
            });
            Snapshot {
                taken_at: t0 + at,
                taken_wall: w0 + at,
                counter: Some(0),
                replicas: vec![r],
                node: None,
                external: false,
            }
        };
        let before = snap(Duration::ZERO, None);
        let inside = snap(Duration::from_secs(30), Some(Duration::from_secs(25)));
        let cpu = diff(&before, &inside).1.unwrap();
        let r = &cpu.per_replica[0];
        assert_eq!(r.cores_used, Some(0.42));
        let view = r.from_metrics_api.as_ref().unwrap();
        assert_eq!((view.window_s, view.ended_s), (10.0, 25.0));
        assert_eq!(r.throttled_ratio, None, "a rate says nothing of throttling");
        let straddling = snap(Duration::from_secs(30), Some(Duration::from_secs(5)));
        let cpu = diff(&before, &straddling).1.unwrap();
        assert_eq!(cpu.per_replica[0].cores_used, None, "unmeasured, not 0");
        assert_eq!(cpu.cores_used, None);
    }

    #[test]
    fn unreadable_values_stay_none() {
        let t0 = Instant::now();
        let mut r = replica(0, 1, 1, 1, 0);
        r.cpu = None;
        r.clicks = None;
        let before = Snapshot {
            taken_at: t0,
            taken_wall: SystemTime::now(),
            counter: None,
            replicas: vec![r.clone()],
            node: None,
            external: false,
        };
        let after = Snapshot {
            taken_at: t0 + Duration::from_secs(1),
            taken_wall: SystemTime::now() + Duration::from_secs(1),
            counter: Some(5),
            replicas: vec![r],
            node: None,
            external: false,
        };
        let (counter, cpu) = diff(&before, &after);
        let counter = counter.unwrap();
        assert_eq!(counter.delta, None);
        assert_eq!(counter.per_replica, vec![None]);
        let cpu = cpu.unwrap();
        assert_eq!(cpu.cores_used, None);
        assert_eq!(cpu.throttled_ratio, None);
    }
}
