//! `loadgen run` (and `attack`) as the end-to-end tests drive it: a scenario of local
//! `polymetrie` replicas written to a temp dir, the binary as a child whose stdout and stderr
//! are collected on threads (so a test can wait, bounded, for a line it prints while it runs),
//! the run's own replicas found by parent pid and polled for the clicks they stored, signals
//! sent by pid, and the proof that nothing is left behind — or, where a test leaves something
//! on purpose (a `kill -9`, a second signal), its removal.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use loadgen_model::result::CampaignResult;
use rustix::process::{kill_process, Pid, Signal};

use super::{external, http, procs};

/// How often a test polls a condition it waits for.
pub const POLL: Duration = Duration::from_millis(20);
/// Bound of one HTTP poll of a replica.
const POLL_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Bound on a run's first replica serving the measured load (deploys on a loaded 2-core box).
pub const SERVING_BOUND: Duration = Duration::from_secs(60);

/// A unique site name: it appears on every replica's command line, so leftover processes of
/// a test can be found.
pub fn marker(tag: &str) -> String {
    format!("e2e{tag}{}", std::process::id())
}

/// The test's scratch dir, `loadgen-e2e-<tag>-…`: a name [`assert_nothing_left`] leaves out of
/// its process scan (the scenario path is on loadgen's own command line).
pub fn tempdir(tag: &str) -> tempfile::TempDir {
    super::tempdir(&format!("e2e-{tag}"))
}

/// Writes `scenario.toml` into `dir`: local replicas serving `site` at `cost` per click, POST
/// clicks to it, warm-up 500 ms; `top` holds top-level keys (they must come before the first
/// table), `body` the thresholds and campaigns.
pub fn scenario_with(dir: &Path, site: &str, cost: &str, top: &str, body: &str) -> PathBuf {
    let text = format!(
        r#"name = "e2e"
counter_site = "{site}"
{top}

[target]
kind = "local"

[service]
cost = "{cost}"
store = "memory"
sites = ["{site}"]

[request]
method = "POST"
path = "/api/clicks"
headers = {{ "content-type" = "application/json" }}
body = '{{"site":"{site}","url":"/page/{{seq}}"}}'

[defaults]
timeout = "3s"
max_in_flight = 5000
warmup = "500ms"
pause = "0s"

{body}"#
    );
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// [`scenario_with`] at 5.5 ms per click (TD4's ~180 clicks/s per core), no top-level keys.
pub fn scenario(dir: &Path, site: &str, body: &str) -> PathBuf {
    scenario_with(dir, site, "5.5ms", "", body)
}

/// `loadgen`, told where polymetrie is so that it does not look (or build) again.
pub fn loadgen() -> Command {
    let mut c = super::command::loadgen();
    if let Ok(p) = external::polymetrie_lookup() {
        c.env("POLYMETRIE_BIN", p);
    }
    c
}

/// `loadgen run SCENARIO --out OUT EXTRA…`.
pub fn run_command(scenario: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = loadgen();
    c.arg("run").arg(scenario).arg("--out").arg(out).args(extra);
    c
}

/// Runs `loadgen run` to its end (bounded by `bound`) and returns its output and pid.
pub fn run(scenario: &Path, out: &Path, extra: &[&str], bound: Duration) -> (Output, u32) {
    let child = Running::spawn(run_command(scenario, out, extra));
    let pid = child.pid;
    (child.finish(bound), pid)
}

/// `OUT/run.json`, parsed.
pub fn read_run(out: &Path) -> CampaignResult {
    let text = std::fs::read_to_string(out.join("run.json")).expect("run.json written");
    serde_json::from_str(&text).expect("run.json is valid")
}

/// Command lines (NULs as spaces) of every process whose command line contains `needle`.
pub fn cmdlines_containing(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(needle))
        .collect()
}

/// No process with `site` on its command line and no cgroup of loadgen `pid` is left.
pub fn assert_nothing_left(site: &str, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut procs = cmdlines_containing(site);
        procs.retain(|c| !c.contains("loadgen-e2e"));
        let groups = procs::cgroups_of(pid);
        if procs.is_empty() && groups.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "left behind: processes {procs:?}, cgroups {groups:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Sends `sig` to `pid` (ESRCH, already gone, is ignored: the caller asserts what it expects).
pub fn signal(pid: u32, sig: Signal) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .expect("pid");
    let _ = kill_process(pid, sig);
}

/// A running `loadgen` child. Its stdout is collected whole; its stderr line by line, so a
/// test can wait for a line. Killed (by its pid) and reaped on drop if the test did not
/// [`Running::finish`] it.
pub struct Running {
    child: Option<Child>,
    pub pid: u32,
    stderr: Arc<Mutex<String>>,
    lines: Receiver<String>,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr_reader: Option<JoinHandle<()>>,
}

impl Running {
    /// Spawns `cmd` with stdout and stderr piped.
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loadgen");
        let mut out = child.stdout.take().expect("piped stdout");
        let stdout = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out.read_to_end(&mut buf);
            buf
        });
        let err = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel();
        let all = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                let mut all = all.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
                let _ = tx.send(line);
            }
        });
        Running {
            pid: child.id(),
            child: Some(child),
            stderr,
            lines,
            stdout: Some(stdout),
            stderr_reader: Some(stderr_reader),
        }
    }

    /// What it printed on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// True once it has exited (a zombie not yet reaped included); never reaps it, so its pid
    /// stays ours to signal.
    pub fn exited(&self) -> bool {
        !procs::alive(self.pid)
    }

    /// Sends `sig` to it, by pid. Safe until [`Running::finish`]: an unreaped child keeps
    /// its pid.
    pub fn signal(&self, sig: Signal) {
        signal(self.pid, sig);
    }

    /// Waits (bounded) for a stderr line containing `needle` and returns it; panics with the
    /// stderr so far when it does not come.
    pub fn wait_for_stderr(&self, needle: &str, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!(
                    "no stderr line with {needle:?} within {bound:?}; stderr:\n{}",
                    self.stderr()
                ),
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "loadgen closed stderr without a line with {needle:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    /// Polls (bounded by [`SERVING_BOUND`]) until one of its `polymetrie` children has stored
    /// at least `min_clicks` clicks of `site`, and returns the pids of its replicas (children
    /// named `polymetrie` that listen; a `polymetrie --version` has no socket). With no
    /// warm-up, a first click means the measured attack is under way.
    pub fn replicas_serving(&self, site: &str, min_clicks: u64) -> Vec<u32> {
        let deadline = Instant::now() + SERVING_BOUND;
        loop {
            assert!(
                !self.exited(),
                "loadgen ended before its replicas served {min_clicks} clicks; stderr:\n{}",
                self.stderr()
            );
            let replicas: Vec<(u32, Vec<u16>)> = procs::children_named(self.pid, "polymetrie")
                .into_iter()
                .map(|pid| (pid, procs::listening_ports(pid)))
                .filter(|(_, ports)| !ports.is_empty())
                .collect();
            let served = replicas.iter().flat_map(|(_, ports)| ports).any(|&port| {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                http::site_clicks_blocking(addr, site, POLL_REQUEST_TIMEOUT)
                    .is_some_and(|c| c >= min_clicks)
            });
            if served {
                return replicas.into_iter().map(|(pid, _)| pid).collect();
            }
            assert!(
                Instant::now() < deadline,
                "no replica of loadgen {} served {min_clicks} clicks of {site} within \
                 {SERVING_BOUND:?}; stderr:\n{}",
                self.pid,
                self.stderr()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits (bounded) for it to exit and returns what it printed; panics (killing it on drop)
    /// when it outlives `bound`.
    pub fn finish(mut self, bound: Duration) -> Output {
        let deadline = Instant::now() + bound;
        let mut child = self.child.take().expect("not finished yet");
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for loadgen") {
                break status;
            }
            if Instant::now() >= deadline {
                // Dropped while unwinding: killed, and what it started removed.
                self.child = Some(child);
                panic!(
                    "loadgen {} still running after {bound:?} (killed); stderr:\n{}",
                    self.pid,
                    self.stderr()
                );
            }
            std::thread::sleep(POLL);
        };
        let stdout = self.stdout.take().map(|t| t.join().unwrap()).unwrap();
        if let Some(t) = self.stderr_reader.take() {
            t.join().unwrap();
        }
        Output {
            status,
            stdout,
            stderr: self.stderr().into_bytes(),
        }
    }
}

impl Drop for Running {
    /// A test that failed half-way: loadgen is killed without its teardown, so what it had
    /// started (its children, by parent pid, taken first) is ended and removed here.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let started = procs::children(self.pid);
            let _ = child.kill();
            let _ = child.wait();
            remove_leftovers(self.pid, &started, None);
        }
    }
}

/// What a loadgen that died without teardown (`kill -9`, a second signal) left: its replicas,
/// known by pid from when they were its children, and its cgroups and deploy dirs, known by its
/// pid. Dropping it ends those processes (by pid, only while their command line still names
/// the test's site) and removes the groups and dirs, so a failing test leaves nothing either.
pub struct Leftovers {
    pub loadgen_pid: u32,
    pub pids: Vec<u32>,
    pub site: String,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        remove_leftovers(self.loadgen_pid, &self.pids, Some(&self.site));
    }
}

/// Ends `pids` (by pid, and only those still naming `site` on their command line when given),
/// then removes the cgroups and deploy dirs of loadgen `loadgen_pid`, all bounded.
fn remove_leftovers(loadgen_pid: u32, pids: &[u32], site: Option<&str>) {
    for &pid in pids {
        if procs::alive(pid) && site.is_none_or(|s| procs::cmdline(pid).contains(s)) {
            signal(pid, Signal::KILL);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for &pid in pids {
        while procs::alive(pid) && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
    for group in procs::cgroups_of(loadgen_pid) {
        // EBUSY until the killed tasks have left the group: bounded retries.
        while std::fs::remove_dir(&group).is_err() && group.exists() {
            if Instant::now() >= deadline {
                eprintln!("could not remove {}", group.display());
                break;
            }
            std::thread::sleep(POLL);
        }
    }
    for dir in deploy_dirs_of(loadgen_pid) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The deploy work dirs (`$TMPDIR/loadgen-<pid>-<n>-deploy<seq>`) of loadgen `pid`.
pub fn deploy_dirs_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("loadgen-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}
