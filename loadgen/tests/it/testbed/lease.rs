//! One campaign per Deployment at a time, on the real control plane: while a run holds the
//! Deployment's coordination Lease, a second `loadgen run` and a `loadgen restore` are refused
//! (exit 2, naming the holder) before they change anything; the first run's SIGTERM path
//! restores the Deployment and deletes its Lease.

use std::time::Duration;

use super::campaign::{annotation_kept, scenario, signal, spec_of, LONG_STEP};
use super::{arg, loadgen, testbed};
use crate::common::{self, serial};

const BOUND: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_against_a_deployment_under_test_is_refused_naming_the_holder() {
    let _serial = serial::lock().await;
    let Some(bed) = testbed() else {
        return;
    };
    let ns = bed.namespace("it-lease");
    ns.deploy_base("1ms");
    let before = spec_of(&ns);
    let dir = common::tempdir("testbed-lease");
    let path = dir.path().join("long.toml");
    std::fs::write(&path, scenario(&ns, LONG_STEP)).unwrap();
    let first_out = dir.path().join("first");
    let first = loadgen(
        &bed,
        &[
            "run".as_ref(),
            arg(&path),
            "--out".as_ref(),
            arg(&first_out),
        ],
    )
    .spawn()
    .unwrap();
    let first_pid = first.id().unwrap();
    // The first run holds the Lease from its prepare on.
    let lease_args = [
        "-n",
        &ns.name,
        "get",
        "lease",
        "loadgen-polymetrie",
        "-o",
        "json",
    ];
    let holder = bed.wait(Duration::from_secs(60), || {
        let text = bed.try_kubectl(&lease_args, None).ok()?;
        let lease: serde_json::Value = serde_json::from_str(&text).ok()?;
        lease["spec"]["holderIdentity"]
            .as_str()
            .filter(|h| h.ends_with(&format!(" pid {first_pid}")))
            .map(str::to_string)
    });
    let holder = holder.expect("the first run's lease");
    // Its step is under way: the Deployment carries the first run's shape and annotation.
    let rolled = bed.wait(Duration::from_secs(90), || {
        (spec_of(&ns).0 == 2).then_some(())
    });
    assert!(rolled.is_some(), "the first run's rollout");
    let generation = ns.get_json(&["deployment", "polymetrie"])["metadata"]["generation"].clone();

    let second_out = dir.path().join("second");
    let second = tokio::time::timeout(
        BOUND,
        loadgen(
            &bed,
            &[
                "run".as_ref(),
                arg(&path),
                "--out".as_ref(),
                arg(&second_out),
            ],
        )
        .output(),
    )
    .await
    .expect("the second run ends by itself")
    .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another run is load-testing this Deployment")
            && stderr.contains(&format!("lease loadgen-polymetrie is held by {holder}")),
        "{stderr}"
    );
    let restore = loadgen(&bed, &["restore".as_ref(), arg(&path)])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&restore.stderr);
    assert_eq!(restore.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&holder), "{stderr}");
    // Neither touched the Deployment: same generation, still the first run's annotation.
    let now = ns.get_json(&["deployment", "polymetrie"]);
    assert_eq!(now["metadata"]["generation"], generation);
    assert!(annotation_kept(&ns));

    signal(&first, rustix::process::Signal::TERM);
    let out = tokio::time::timeout(BOUND, first.wait_with_output())
        .await
        .expect("the first run exits after SIGTERM")
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "interrupted");
    assert_eq!(spec_of(&ns), before);
    let gone = bed.try_kubectl(
        &[
            "-n",
            &ns.name,
            "get",
            "lease",
            "loadgen-polymetrie",
            "-o",
            "name",
        ],
        None,
    );
    assert!(
        gone.as_ref().is_err_and(|e| e.contains("NotFound")),
        "the lease is released: {gone:?}"
    );
}
