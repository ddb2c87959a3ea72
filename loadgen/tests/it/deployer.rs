//! The local deployer against real `polymetrie` and `redis-server` processes and real cgroups:
//! replicas each have their own port, run under the step's CFS quota, and every exit path — teardown, a
//! failed deploy, a dropped deployment (panic) — leaves no process or cgroup of ours behind.
//! Skips loudly without writable cgroups or the binaries, unless LOADGEN_REQUIRE_EXTERNAL=1.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cpu_cgroup::{CgroupLayout, CGROUP_ROOT};
use loadgen::deployer::{Cgroup, DeployError, Deployment, LocalDeployer};
use loadgen::plan::{LocalService, Store, Topology};

use crate::common::polymetrie::{local_service, DEPLOY_BOUND as BOUND};
use crate::common::{self, external, procs};

/// The polymetrie binary when cgroups and redis-server are usable too (else a loud skip).
fn with_cgroups_and_redis() -> Option<PathBuf> {
    let bin = external::polymetrie()?;
    let redis = external::binary("redis-server", "redis-server");
    (external::cgroups_usable() && redis.is_some()).then_some(bin)
}

fn service(binary: PathBuf) -> LocalService {
    local_service(binary, Duration::from_micros(100))
}

fn topology(replicas: u32, cpu_limit_cores: Option<f64>, store: Store) -> Topology {
    Topology {
        replicas,
        cpu_limit_cores,
        store,
        autoscale: None,
        tls: false,
    }
}

/// Live (or unreaped) children of this process: `(pid, comm)`.
fn our_children() -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(me) {
            out.push((pid, stat[open + 1..close].to_string()));
        }
    }
    out
}

/// Our cgroups (`loadgen-<our pid>-…`) in every hierarchy that exists.
fn our_cgroups() -> Vec<PathBuf> {
    procs::cgroups_of(std::process::id())
}

fn assert_nothing_left(pids: &[u32]) {
    for pid in pids {
        assert!(!procs::exists(*pid), "pid {pid} still exists");
    }
    assert_eq!(our_children(), vec![], "children left behind");
    assert_eq!(our_cgroups(), Vec::<PathBuf>::new(), "cgroups left behind");
}

fn pids_of(d: &Deployment) -> Vec<u32> {
    d.replicas
        .iter()
        .map(|r| r.pid)
        .chain(d.redis_pid())
        .collect()
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

#[tokio::test]
async fn limited_replicas_share_a_port_in_their_cgroups_and_teardown_leaves_nothing() {
    let _serial = common::serial::lock().await;
    let Some(bin) = with_cgroups_and_redis() else {
        return;
    };
    let mut deployer = LocalDeployer::new(&service(bin));
    let t0 = std::time::Instant::now();
    let d = deployer
        .deploy(&topology(2, Some(0.5), Store::Redis), BOUND)
        .await
        .expect("deploy");
    eprintln!(
        "deploy (2 limited replicas + redis, ready): {:?}",
        t0.elapsed()
    );
    assert_eq!(d.replicas.len(), 2);
    assert!(
        matches!(d.cgroup_mode, Some("v1" | "v2")),
        "{:?}",
        d.cgroup_mode
    );
    assert_eq!(d.topology_view().store, "redis");
    assert_eq!(d.scrape_urls().len(), 2);
    assert!(d.redis_url().is_some());
    let port = d.replicas[0].port().unwrap();
    assert_eq!(d.base_url, format!("http://127.0.0.1:{port}"));
    // Each replica its own port, for the generator to spread requests over (a front end's
    // view), not one SO_REUSEPORT port the kernel hashes connections over.
    assert_ne!(
        d.replicas[1].port(),
        Some(port),
        "each replica has its own port"
    );
    let own: Vec<String> = d
        .replicas
        .iter()
        .map(|r| format!("http://{}", r.addr))
        .collect();
    assert_eq!(d.endpoints, own);
    assert_ne!(d.replicas[0].admin_url, d.replicas[1].admin_url);
    let mut dirs = Vec::new();
    for r in &d.replicas {
        let group = r.cgroup.as_ref().expect("limited replica has a cgroup");
        assert_eq!(group.limit_cores(), Some(0.5));
        assert!(group.contains(r.pid), "pid {} in its cgroup", r.pid);
        for dir in group.dirs() {
            let procs = read(dir.join("cgroup.procs"));
            assert!(procs.lines().any(|l| l == r.pid.to_string()), "{procs}");
            dirs.push(dir.clone());
        }
        let cpu_dir = &group.dirs()[0];
        if cpu_dir.join("cpu.cfs_quota_us").exists() {
            assert_eq!(read(cpu_dir.join("cpu.cfs_period_us")), "100000");
            assert_eq!(read(cpu_dir.join("cpu.cfs_quota_us")), "50000");
        } else {
            assert_eq!(read(cpu_dir.join("cpu.max")), "50000 100000");
        }
    }
    let pids = pids_of(&d);
    let t0 = std::time::Instant::now();
    d.teardown().await.expect("teardown");
    eprintln!("teardown (graceful): {:?}", t0.elapsed());
    for dir in dirs {
        assert!(!dir.exists(), "{} removed", dir.display());
    }
    assert_nothing_left(&pids);
}

#[tokio::test]
async fn a_dropped_deployment_kills_and_removes_everything() {
    let _serial = common::serial::lock().await;
    let Some(bin) = with_cgroups_and_redis() else {
        return;
    };
    let mut deployer = LocalDeployer::new(&service(bin));
    let d = deployer
        .deploy(&topology(2, None, Store::Redis), BOUND)
        .await
        .expect("deploy");
    let pids = pids_of(&d);
    assert_eq!(pids.len(), 3);
    assert!(d.replicas.iter().all(|r| r.cgroup.is_some()), "accounted");
    // The runner panics while holding the deployment: no teardown ever runs.
    let crashed = tokio::spawn(async move {
        let _held = d;
        panic!("runner panicked mid-step");
    })
    .await;
    assert!(crashed.unwrap_err().is_panic());
    assert_nothing_left(&pids);
}

#[tokio::test]
async fn a_failed_deploy_tears_down_what_it_started() {
    let _serial = common::serial::lock().await;
    let Some(bin) = with_cgroups_and_redis() else {
        return;
    };
    let mut broken = service(bin.clone());
    broken.extra_args = vec!["--no-such-flag".into()];
    let err = LocalDeployer::new(&broken)
        .deploy(&topology(2, Some(1.0), Store::Redis), BOUND)
        .await
        .expect_err("a replica that cannot start fails the deploy");
    assert!(
        matches!(err, DeployError::ReplicaExited { index: 0, .. }),
        "{err}"
    );
    assert_nothing_left(&[]);

    // Not ready within the bound: the replica that did start is stopped too.
    let err = LocalDeployer::new(&service(bin))
        .deploy(&topology(2, None, Store::Memory), Duration::from_millis(1))
        .await
        .expect_err("1 ms is too short to be ready");
    assert!(
        matches!(err, DeployError::NotReady { index: 0, .. }),
        "{err}"
    );
    assert_nothing_left(&[]);
}

#[tokio::test]
async fn a_limited_step_without_usable_cgroups_fails_and_never_runs_unlimited() {
    let _serial = common::serial::lock().await;
    let Some(bin) = external::polymetrie() else {
        return;
    };
    // A cgroup root that is a plain read-only directory: nothing there can enforce a quota.
    let fake_root = common::tempdir("fake-cgroot");
    let root = fake_root.path();
    std::fs::create_dir_all(root.join("cpu")).unwrap();
    std::fs::create_dir_all(root.join("cpuacct")).unwrap();
    let mut perms = std::fs::metadata(root).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o555);
    std::fs::set_permissions(root, perms).unwrap();

    let mut deployer = LocalDeployer::with_cgroup_root(&service(bin), root);
    let err = deployer
        .deploy(&topology(1, Some(0.5), Store::Memory), BOUND)
        .await
        .expect_err("limited step must fail");
    let msg = err.to_string();
    assert!(
        matches!(err, DeployError::CgroupUnavailable { .. }),
        "{msg}"
    );
    assert!(msg.contains("refusing to run it unlimited"), "{msg}");
    assert!(msg.contains("0.5 cores"), "{msg}");
    assert_eq!(our_children(), vec![], "nothing was started");

    // Without a limit the step runs, with its CPU left unmeasured.
    let d = deployer
        .deploy(&topology(1, None, Store::Memory), BOUND)
        .await
        .expect("an unlimited step runs without cgroups");
    assert!(d.replicas[0].cgroup.is_none());
    assert_eq!(d.cgroup_mode, None);
    let snap =
        loadgen::probe::snapshot(&d, &loadgen::plan::counter::Counter::Site("demo".into())).await;
    assert_eq!(snap.replicas[0].cpu, None);
    assert_eq!(snap.counter, Some(0));
    let pids = pids_of(&d);
    d.teardown().await.expect("teardown");
    assert_nothing_left(&pids);

    let mut perms = std::fs::metadata(root).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(root, perms).unwrap();
    fake_root.close().unwrap();
}

#[tokio::test]
async fn zero_replicas_is_rejected_before_anything_starts() {
    let service = service(PathBuf::from("/nonexistent/polymetrie"));
    let err = LocalDeployer::new(&service)
        .deploy(&topology(0, None, Store::Memory), BOUND)
        .await
        .expect_err("0 replicas");
    assert!(matches!(err, DeployError::InvalidTopology(_)), "{err}");
}

#[tokio::test]
async fn groups_of_a_dead_loadgen_are_swept_with_their_orphans() {
    let _serial = common::serial::lock().await;
    if !external::cgroups_usable() {
        return;
    }
    let layout = CgroupLayout::detect(Path::new(CGROUP_ROOT)).unwrap();
    // A pid that just exited stands for a loadgen killed with SIGKILL.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let name = format!("loadgen-{dead}-0-r0");
    let group = Cgroup::create(&layout, &name, None).unwrap();
    let dirs = group.dirs().to_vec();
    // The orphan it left: a process inside the group. Forget the handle as the dead loadgen
    // never removed it.
    let mut orphan = group
        .command(Path::new("/bin/sleep"))
        .arg("30")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !group.contains(orphan.id()) {
        assert!(std::time::Instant::now() < deadline, "orphan never joined");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::mem::forget(group);

    cpu_cgroup::remove_stale(&layout);

    let status = orphan.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "orphan killed"
    );
    for dir in dirs {
        assert!(!dir.exists(), "{} swept", dir.display());
    }
    // A live loadgen's group (ours) is left alone.
    let mine = Cgroup::create(
        &layout,
        &format!("loadgen-{}-99-r0", std::process::id()),
        None,
    )
    .unwrap();
    cpu_cgroup::remove_stale(&layout);
    assert!(mine.dirs().iter().all(|d| d.exists()));
}
