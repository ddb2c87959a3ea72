//! Real shard processes: N `loadgen attack --shard K/N --start-at T --json` children against one
//! `polymetrie` child (port 0), their results merged by `loadgen merge`. Merged, intended, sent
//! and ok are exact, the service counted exactly the merged ok count, and every `{seq}` arrived
//! once (`/p/0` … `/p/<intended-1>`, each URL clicked once); a shard started after the start time
//! is flagged late and the merged step invalid; a shard killed mid-step leaves the merged step
//! invalid with "shard 2 missing".

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime};

use loadgen_model::result::StepResult;
use loadgen_model::shard::unix_ms;

use crate::common::{self, polymetrie::Polymetrie};

/// Bound on polling the service while a shard runs.
const POLL_BOUND: Duration = Duration::from_secs(30);

/// A shard child, killed (by its pid, through its handle) if the test ends before it does.
struct ShardChild(Option<Child>);

impl Drop for ShardChild {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Polymetrie with the demo site, no cost per click, and room to list every URL it was sent.
fn service() -> Option<Polymetrie> {
    Polymetrie::start(&[
        "--sites",
        "demo",
        "--cost",
        "0",
        "--url-label-cap",
        "100000",
        "--top-urls",
        "100000",
    ])
}

/// `loadgen attack` of shard `k` of `n` at `rate` for `secs`, from `start_at` (unix ms).
fn spawn_shard(
    svc: &Polymetrie,
    k: u32,
    n: u32,
    rate: u32,
    secs: u32,
    start_at: u64,
) -> ShardChild {
    let child = common::command::loadgen()
        .arg("attack")
        .arg(format!("http://{}/api/clicks", svc.addr))
        .args([
            "--rate",
            &rate.to_string(),
            "--duration",
            &format!("{secs}s"),
        ])
        .args([
            "--method",
            "POST",
            "--header",
            "content-type: application/json",
        ])
        .args(["--body", r#"{"site":"demo","url":"/p/{seq}"}"#])
        .args([
            "--shard",
            &format!("{k}/{n}"),
            "--start-at",
            &start_at.to_string(),
        ])
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn loadgen attack");
    ShardChild(Some(child))
}

/// Waits for a shard, writes its JSON result to `dir/shard-K.json` and returns the path.
fn finish(shard: ShardChild, k: u32, dir: &Path) -> PathBuf {
    let mut shard = shard;
    let child = shard.0.take().expect("a running shard");
    let out = child.wait_with_output().expect("shard ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with('{'),
        "shard {k}: {stdout} / {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join(format!("shard-{k}.json"));
    std::fs::write(&path, stdout.as_bytes()).unwrap();
    path
}

fn start_in(ahead: Duration) -> u64 {
    unix_ms(SystemTime::now() + ahead)
}

/// `loadgen merge FILES --out merged.json`: its exit code and the merged step.
fn merge(files: &[PathBuf], dir: &Path) -> (Option<i32>, StepResult) {
    let out_path = dir.join("merged.json");
    let out = common::command::loadgen()
        .arg("merge")
        .args(files)
        .arg("--out")
        .arg(&out_path)
        .output()
        .expect("run loadgen merge");
    let text = std::fs::read_to_string(&out_path).unwrap_or_else(|e| {
        panic!(
            "no merged.json ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), serde_json::from_str(&text).unwrap())
}

/// The demo site's stats: total clicks and clicks per URL.
fn stats(svc: &Polymetrie) -> (u64, Vec<(String, u64)>) {
    let (status, body) =
        common::http::get_blocking(svc.addr, "/api/sites/demo/stats", Duration::from_secs(5))
            .expect("stats answered");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let urls = v["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["url"].as_str().unwrap().to_string(),
                u["clicks"].as_u64().unwrap(),
            )
        })
        .collect();
    (v["clicks"].as_u64().unwrap(), urls)
}

#[test]
fn three_shard_processes_merge_into_one_exact_step_the_service_counted() {
    let _serial = common::serial::lock_blocking();
    let Some(svc) = service() else { return };
    let dir = common::tempdir("shards");
    let (before, _) = stats(&svc);
    // Far enough ahead for three debug-build processes to start on a busy machine.
    let t = start_in(Duration::from_millis(2500));
    let children: Vec<ShardChild> = (0..3).map(|k| spawn_shard(&svc, k, 3, 300, 2, t)).collect();
    let files: Vec<PathBuf> = children
        .into_iter()
        .enumerate()
        .map(|(k, c)| finish(c, k as u32, dir.path()))
        .collect();
    let (code, step) = merge(&files, dir.path());
    assert!(step.valid, "{:?}", step.invalid_reason);
    assert_eq!(code, Some(0));
    assert_eq!((step.intended, step.sent, step.ok), (600, 600, 600));
    assert_eq!(step.intended, step.sent + step.dropped);
    let (after, urls) = stats(&svc);
    assert_eq!(
        after - before,
        step.ok,
        "service counter delta == merged ok"
    );
    // Every {seq} of the one schedule arrived, once: the shards partition it.
    let mut seen: Vec<(String, u64)> = urls;
    seen.sort();
    let mut expected: Vec<(String, u64)> = (0..600).map(|i| (format!("/p/{i}"), 1)).collect();
    expected.sort();
    assert_eq!(seen, expected);
    let shards = step.sharding.unwrap().shards;
    assert_eq!(
        shards.iter().map(|s| s.ok).collect::<Vec<_>>(),
        [Some(200); 3]
    );
}

#[test]
fn a_shard_started_after_the_start_time_is_late_and_the_step_invalid() {
    let _serial = common::serial::lock_blocking();
    let Some(svc) = service() else { return };
    let dir = common::tempdir("shards-late");
    let t = start_in(Duration::from_millis(1500));
    let first = finish(spawn_shard(&svc, 0, 2, 100, 1, t), 0, dir.path());
    // Shard 0 has run its whole schedule (0 … 0.99 s): the start time is long past for shard 1.
    let late = finish(spawn_shard(&svc, 1, 2, 100, 1, t), 1, dir.path());
    let own: StepResult = serde_json::from_str(&std::fs::read_to_string(&late).unwrap()).unwrap();
    let late_ms = own
        .sharding
        .as_ref()
        .unwrap()
        .part
        .as_ref()
        .unwrap()
        .late_ms
        .unwrap();
    assert!(late_ms >= 900.0, "late by {late_ms} ms");
    assert!(!own.valid);
    let (code, step) = merge(&[first, late], dir.path());
    assert_eq!(code, Some(1));
    let why = step.invalid_reason.unwrap();
    assert!(why.contains("shard 1 invalid: started"), "{why}");
    assert_eq!(step.intended, step.sent + step.dropped);
}

#[test]
fn a_shard_killed_mid_step_leaves_the_step_invalid_with_shard_2_missing() {
    let _serial = common::serial::lock_blocking();
    let Some(svc) = service() else { return };
    let dir = common::tempdir("shards-killed");
    let (before, _) = stats(&svc);
    let t = start_in(Duration::from_millis(2500));
    let mut children: Vec<ShardChild> =
        (0..3).map(|k| spawn_shard(&svc, k, 3, 150, 4, t)).collect();
    // Kill shard 2 once the load is under way (clicks are arriving), well before its end.
    let deadline = std::time::Instant::now() + POLL_BOUND;
    while stats(&svc).0 == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no load within {POLL_BOUND:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = children.pop().unwrap();
    drop(killed);
    let files: Vec<PathBuf> = children
        .into_iter()
        .enumerate()
        .map(|(k, c)| finish(c, k as u32, dir.path()))
        .collect();
    let (code, step) = merge(&files, dir.path());
    assert_eq!(code, Some(1));
    let why = step.invalid_reason.unwrap();
    assert!(why.contains("shard 2 missing"), "{why}");
    assert_eq!(step.intended, step.sent + step.dropped);
    assert_eq!(step.intended, 400, "the two shards' parts of 600");
}
