//! polymetrie's own cgroup counters (`polymetrie_cgroup_cpu_*`, the only CPU view of a cluster
//! pod) agree with the cgroup files the local deployer reads, over the same real step: a
//! replica under a 0.5-core CFS quota, saturated by a CPU-bound load.

use std::time::Duration;

use bytes::Bytes;
use hyper::Method;
use loadgen::deployer::LocalDeployer;
use loadgen::plan::counter::Counter;
use loadgen::plan::{Store, Topology};
use loadgen::probe::{diff, snapshot};
use loadgen_engine::load::Load;
use loadgen_engine::target::Reach;
use loadgen_engine::template::RequestTemplate;
use loadgen_engine::{self as engine, AttackSpec, Limits};
use tokio_util::sync::CancellationToken;

use crate::common::polymetrie::{local_service, DEPLOY_BOUND, SITE};
use crate::common::{external, serial};

/// The agreement the issue asks of the two views of one step.
const TOLERANCE: f64 = 0.02;

pub fn clicks(site: &str) -> RequestTemplate {
    RequestTemplate {
        method: Method::POST,
        path: "/api/clicks".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from(format!(r#"{{"site":"{site}","url":"/p/{{seq}}"}}"#)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_cgroup_metrics_agree_with_the_cgroup_files() {
    let _serial = serial::lock().await;
    let (Some(bin), true) = (external::polymetrie(), external::cgroups_usable()) else {
        return;
    };
    let mut deployer = LocalDeployer::new(&local_service(bin, Duration::from_millis(4)));
    let topology = Topology {
        replicas: 1,
        cpu_limit_cores: Some(0.5),
        store: Store::Memory,
        autoscale: None,
        tls: false,
    };
    let d = deployer
        .deploy(&topology, DEPLOY_BOUND)
        .await
        .expect("deploy");
    let before = snapshot(&d, &Counter::Site(SITE.into())).await;
    // 0.5 core at 4 ms per click is 125 clicks/s: 200/s keeps the quota saturated.
    let spec = AttackSpec {
        url: d.base_url.clone(),
        endpoints: Vec::new(),
        balance: Default::default(),
        tls: Default::default(),
        http2: None,
        reach: Reach::Loopback,
        load: Load::constant(200.0, Duration::from_secs(4)),
        request: clicks(SITE),
        limits: Limits {
            timeout: Duration::from_secs(5),
            max_in_flight: 1_000,
            connections: None,
            max_connections: None,
            io: loadgen_engine::io::IoMode::Auto,
        },
        shard: None,
        start_at: None,
    };
    let record = engine::run(&spec, &CancellationToken::new(), None).await;
    let after = snapshot(&d, &Counter::Site(SITE.into())).await;
    d.teardown().await.expect("teardown");
    assert!(record.expect("attack").ok > 0);

    let (_, cpu) = diff(&before, &after);
    let r = &cpu.expect("cpu").per_replica[0];
    let svc = r
        .from_service
        .as_ref()
        .expect("the service exports its cgroup's cpu");
    eprintln!("cgroup files: {r:?}\nservice metrics: {svc:?}");
    let (files, own) = (r.cores_used.unwrap(), svc.cores_used.unwrap());
    assert!(files > 0.3, "the replica was loaded: {files} cores");
    assert!(
        (files - own).abs() <= TOLERANCE * files,
        "cores used: cgroup files {files}, service {own}"
    );
    let (p1, p2) = (r.nr_periods.unwrap() as f64, svc.nr_periods.unwrap() as f64);
    assert!(
        (p1 - p2).abs() <= TOLERANCE * p1 + 1.0,
        "periods {p1} vs {p2}"
    );
    let (t1, t2) = (r.throttled_ratio.unwrap(), svc.throttled_ratio.unwrap());
    assert!(t1 > 0.0, "throttled under the quota: {t1}");
    assert!((t1 - t2).abs() <= TOLERANCE, "throttled ratio {t1} vs {t2}");
}
