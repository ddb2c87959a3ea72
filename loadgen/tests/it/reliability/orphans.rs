//! A `kill -9` of loadgen: the orphans it leaves (a replica, and the step's Redis, a dependency
//! in its own accounting group) are swept and reported by the next run.

use super::*;

#[test]
fn a_kill_9_of_loadgen_leaves_orphans_that_the_next_run_sweeps_and_reports() {
    let _serial = common::serial::lock_blocking();
    if !ready() || external::binary("redis-server", "redis-server").is_none() {
        return;
    }
    let dir = tempdir("orphans");
    let site = marker("orphans");
    // The first step shares a Redis between its replicas: a dependency, orphaned too.
    let campaign = long_campaign(20, Some(0.5)).replacen(
        "name = \"one\"\n",
        "name = \"one\"\nstore = \"redis\"\n",
        1,
    );
    let sc = scenario(dir.path(), &site, &campaign);
    let out = dir.path().join("out");
    let child = Running::spawn(run_command(&sc, &out, &[]));
    let dead = child.pid;
    let replicas = child.replicas_serving(&site, 1);
    assert_eq!(replicas.len(), 1, "{replicas:?}");
    let orphan = replicas[0];
    let redis = redis_of(dead);
    let _leftovers = Leftovers {
        loadgen_pid: dead,
        pids: replicas.into_iter().chain(redis).collect(),
        site: site.clone(),
    };
    child.signal(Signal::KILL);
    // Reaped: the pid no longer runs, as the next run's sweep must see it.
    let o = child.finish(STOP_BOUND);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(9)
    );
    assert!(!procs::exists(dead));

    // What it left: its replica, still running, in its group under the cpu hierarchy.
    let group = format!("loadgen-{dead}-");
    assert!(procs::alive(orphan), "the orphan survives its loadgen");
    let redis = redis.expect("the step's redis-server runs in its dependency group");
    assert!(procs::alive(redis), "redis-server survives its loadgen");
    assert!(
        procs::cgroup_paths(orphan)
            .iter()
            .any(|p| p.contains(&group)),
        "{:?}",
        procs::cgroup_paths(orphan)
    );
    let groups = procs::cgroups_of(dead);
    assert!(
        groups
            .iter()
            .any(|g| g.starts_with("/sys/fs/cgroup/cpu/") && g.join("cgroup.procs").exists()),
        "{groups:?}"
    );

    let next_dir = tempdir("orphans-next");
    let next_site = marker("orphansnext");
    let next = scenario(
        next_dir.path(),
        &next_site,
        r#"
[[campaign]]
name = "next"
warmup = "0s"

[[campaign.step]]
rate = 20
duration = "1s"
"#,
    );
    let next_out = next_dir.path().join("out");
    let (o, next_pid) = common::run::run(&next, &next_out, &[], RUN_BOUND);
    assert_exit_or_lagged(&o, 0);
    let deadline = Instant::now() + Duration::from_secs(5);
    while procs::alive(orphan) || procs::alive(redis) {
        assert!(
            Instant::now() < deadline,
            "orphan {orphan} or {redis} still runs"
        );
        std::thread::sleep(POLL);
    }
    assert!(
        procs::cgroups_of(dead).is_empty(),
        "{:?}",
        procs::cgroups_of(dead)
    );
    let r = read_run(&next_out);
    let swept: Vec<&Finding> = r
        .findings
        .iter()
        .filter(|f| f.check == CheckName::OrphansSwept)
        .collect();
    assert!(
        swept.iter().any(|f| f.severity == Severity::Warn
            && f.message
                .contains(&format!("of loadgen pid {dead}, which no longer runs"))
            && f.message.contains(&format!("cgroup {group}"))
            && f.message.contains(&orphan.to_string())),
        "{:?}",
        r.findings
    );
    assert!(
        swept
            .iter()
            .any(|f| f.message.contains("-dep-redis") && f.message.contains(&redis.to_string())),
        "{:?}",
        r.findings
    );
    eprintln!("orphans_swept: {}", swept[0].message);
    assert_nothing_left(&next_site, next_pid);
}

/// The pid of the `redis-server` in loadgen `pid`'s dependency group, once it runs (bounded).
fn redis_of(pid: u32) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = procs::cgroups_of(pid)
            .into_iter()
            .filter(|g| g.to_string_lossy().ends_with("-dep-redis"))
            .filter_map(|g| std::fs::read_to_string(g.join("cgroup.procs")).ok())
            .flat_map(|t| {
                t.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .find(|p| procs::comm(*p).as_deref() == Some("redis-server"));
        if found.is_some() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(POLL);
    }
}
