//! A local campaign whose step runs on `[generators] count = 3`: three `loadgen attack --shard`
//! processes of the one schedule, started with one `--start-at`, merged into the step — which
//! reconciles exactly with the service's own counter (delta = merged ok = intended), keeps its
//! shards' results beside run.json, and leaves no process behind; a step overriding the count
//! back to 1 runs on the campaign's own engine, unsharded. The sharded step's CPU window starts
//! when its shards do (their common start time), not when they were launched before it.

use std::time::Duration;

use loadgen_model::result::{CheckName, RunStatus, Severity};

use crate::common::run::{assert_nothing_left, marker, read_run, scenario_with, tempdir};
use crate::common::{self, external};

/// Bound on the whole run (two short steps, deploys and shard processes on a loaded machine).
const RUN_BOUND: Duration = Duration::from_secs(120);

#[test]
fn a_three_generator_step_reconciles_exactly_with_the_service_counter() {
    let _serial = common::serial::lock_blocking();
    if !external::cgroups_usable() {
        return;
    }
    let dir = tempdir("shards");
    let site = marker("shards");
    let sc = scenario_with(
        dir.path(),
        &site,
        "0s",
        "",
        r#"
[generators]
count = 3

[[campaign]]
name = "sharded"

[[campaign.step]]
name = "three"
rate = 150
duration = "3s"

[[campaign.step]]
name = "one"
rate = 100
duration = "1s"
generators = 1
"#,
    );
    let out = dir.path().join("out");
    let (o, pid) = common::run::run(&sc, &out, &[], RUN_BOUND);
    let r = read_run(&out);
    assert_eq!(
        r.status,
        RunStatus::Completed,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let three = &r.steps[0];
    assert!(three.valid, "{:?}", three.invalid_reason);
    assert_eq!((three.intended, three.sent, three.ok), (450, 450, 450));
    let counter = three.counter.as_ref().expect("counter read");
    assert_eq!(
        counter.delta,
        Some(three.ok as i64),
        "service counter delta == merged ok"
    );
    assert!(
        !three
            .checks
            .iter()
            .any(|f| f.check == CheckName::CounterReconcile && f.severity >= Severity::Warn),
        "{:?}",
        three.checks
    );
    // The replica's CPU spans the load: from the shards' start (1.5 s after their launch,
    // which the step's first reading precedes) to the reading after they ended.
    let window = three
        .cpu
        .as_ref()
        .and_then(|c| c.window_s)
        .expect("cpu window");
    assert!(
        (3.0..3.0 + 1.5).contains(&window),
        "the cpu window ({window:.2} s) must start with the shards, not at their launch"
    );
    let sharding = three.sharding.as_ref().expect("a sharded step");
    assert_eq!(sharding.count, 3);
    let sent: Vec<Option<u64>> = sharding.shards.iter().map(|s| s.sent).collect();
    assert_eq!(sent, [Some(150); 3]);
    for k in 0..3 {
        let f = out.join(format!("shards/sharded/three/shard-{k}.json"));
        assert!(f.exists(), "{} kept", f.display());
    }
    let one = &r.steps[1];
    assert!(one.sharding.is_none(), "generators = 1 runs unsharded");
    assert_eq!(one.counter.as_ref().unwrap().delta, Some(one.ok as i64));
    common::command::assert_exit_or_lagged(&o, 0);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("three: 3 generators (shards of one schedule), merged"),
        "{table}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("3 generators (shards of one schedule), merged"));
    assert_nothing_left(&site, pid);
}
