//! One local `polymetrie` replica: started inside its cgroup before it runs any code of its own,
//! known as listening once it prints its `{"event":"listening",…}` line, ready once its admin
//! `/readyz` answers 200.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::process::{ChildProcess, Stopped};
use super::workdir::log_tail;
use super::DeployError;
use crate::http;
use crate::plan::LocalService;
use cpu_cgroup::group::{Cgroup, JOIN_FAILED_EXIT};

/// Set it to let replicas' stderr through to ours instead of a log file.
pub const LOG_ENV: &str = "LOADGEN_LOG";
/// How often `/readyz` is polled.
const READY_POLL: Duration = Duration::from_millis(20);
/// Bound of one `/readyz` request.
const READY_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// How long to wait for the exit status of a replica whose stdout closed early.
const EXIT_STATUS_BOUND: Duration = Duration::from_secs(1);
/// Lines of a replica's stderr quoted in errors.
const STDERR_TAIL_LINES: usize = 5;

/// A running replica.
#[derive(Debug)]
pub struct Replica {
    pub index: u32,
    pub pid: u32,
    /// The shared service address it listens on, `127.0.0.1:PORT`.
    pub addr: String,
    /// Its own admin endpoint (`/readyz`, `/metrics`, stats), `http://127.0.0.1:PORT`;
    /// empty for a user's service (its metrics are at `metrics_port`).
    pub admin_url: String,
    /// The second port a user's service was given for its metrics (`{metrics_port}`).
    pub metrics_port: Option<u16>,
    /// Where a managed Prometheus scrapes it: a user's service's `[prometheus] scrape` filled
    /// in (`None` without one); polymetrie's is its admin `/metrics`.
    pub scrape_url: Option<String>,
    // Declared before `cgroup`: on drop the process is killed before its group is removed.
    pub(crate) process: ChildProcess,
    /// Its cgroup (limited or accounting-only); `None` when cgroups are unavailable and the
    /// step has no limit — then its CPU is not measured.
    pub cgroup: Option<Cgroup>,
    /// Its stderr log, unless [`LOG_ENV`] is set.
    pub log: Option<PathBuf>,
}

/// The stdout line the service prints once bound (under `--log-format json` inside a full log
/// line, whose other keys are ignored here).
#[derive(Debug, Deserialize)]
struct Listening {
    event: String,
    addr: String,
    admin_addr: String,
    pid: u32,
}

/// How to start one replica.
pub(super) struct Launch<'a> {
    pub index: u32,
    pub binary: &'a Path,
    pub service: &'a LocalService,
    /// Where it listens: `127.0.0.1:0`, a port of the kernel's choice.
    pub listen: String,
    /// Its own admin (metrics) address, `127.0.0.1:0` too.
    pub admin_listen: String,
    pub store_arg: String,
    pub cgroup: Option<Cgroup>,
    pub log_dir: &'a Path,
    /// `(certificate, key)`: serve HTTPS with them (the run's PKI).
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Launch<'_> {
    fn service_args(&self) -> Vec<String> {
        let s = self.service;
        let mut args = vec!["--listen".into(), self.listen.clone()];
        args.extend([
            "--admin-listen".into(),
            self.admin_listen.clone(),
            "--store".into(),
            self.store_arg.clone(),
            "--cost".into(),
            format_cost(s.cost),
        ]);
        if !s.sites.is_empty() {
            args.push("--sites".into());
            args.push(s.sites.join(","));
        }
        if let Some(w) = s.workers {
            args.push("--workers".into());
            args.push(w.to_string());
        }
        if let Some(m) = s.max_inflight {
            args.push("--max-inflight".into());
            args.push(m.to_string());
        }
        if let Some((cert, key)) = &self.tls {
            args.extend([
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ]);
        }
        if s.http2 {
            args.push("--http2".into());
        }
        args.extend(s.extra_args.iter().cloned());
        args
    }
}

/// `--cost` in exact integer units (`5500us`): a float rendering could carry a fraction of a
/// nanosecond, which the service's duration parser rejects.
pub fn format_cost(cost: Duration) -> String {
    let ns = cost.as_nanos();
    if ns % 1_000 == 0 {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

/// Starts a replica and waits (until `deadline`) for its listening line; then checks it runs
/// in its cgroup. Readiness (`/readyz`) is checked separately by `Replica::wait_ready`.
pub(super) async fn start(launch: Launch<'_>, deadline: Instant) -> Result<Replica, DeployError> {
    let index = launch.index;
    let (mut process, log, first_line) = spawn(&launch)?;
    let line = match tokio::time::timeout_at(deadline, first_line).await {
        Ok(Ok(line)) => line,
        Ok(Err(_closed)) => {
            let status = match exit_status(&mut process).await {
                Some(s) if s.code() == Some(JOIN_FAILED_EXIT) && launch.cgroup.is_some() => {
                    format!("{s}: could not join its cgroup")
                }
                Some(s) => s.to_string(),
                None => "stdout closed".into(),
            };
            return Err(DeployError::ReplicaExited {
                index,
                status,
                stderr: stderr_tail(&log),
            });
        }
        Err(_) => {
            return Err(DeployError::NotReady {
                index,
                reason: format!("no listening line on stdout; stderr: {}", stderr_tail(&log)),
            })
        }
    };
    let listening = parse_listening(&line, index, process.pid())?;
    if let Some(group) = &launch.cgroup {
        if !group.contains(process.pid()) {
            return Err(DeployError::Cgroup(format!(
                "replica {index} (pid {}) is not in cgroup {}",
                process.pid(),
                group.name()
            )));
        }
    }
    Ok(Replica {
        index,
        pid: process.pid(),
        addr: listening.addr,
        admin_url: format!("http://{}", listening.admin_addr),
        metrics_port: None,
        scrape_url: Some(format!("http://{}/metrics", listening.admin_addr)),
        process,
        cgroup: launch.cgroup,
        log,
    })
}

/// The first stdout line, once the replica writes it.
type FirstLine = tokio::sync::oneshot::Receiver<String>;

/// Spawns the replica's process (inside its cgroup when it has one), its stderr going to a
/// log file unless `LOADGEN_LOG` is set.
fn spawn(launch: &Launch<'_>) -> Result<(ChildProcess, Option<PathBuf>, FirstLine), DeployError> {
    let index = launch.index;
    let mut cmd = match &launch.cgroup {
        Some(group) => group.command(launch.binary),
        None => Command::new(launch.binary),
    };
    cmd.args(launch.service_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let log = if std::env::var_os(LOG_ENV).is_some() {
        cmd.stderr(Stdio::inherit());
        None
    } else {
        let path = launch.log_dir.join(format!("replica-{index}.log"));
        let file = std::fs::File::create(&path).map_err(|source| DeployError::Spawn {
            what: format!("replica {index} log {}", path.display()),
            source,
        })?;
        cmd.stderr(file);
        Some(path)
    };
    let mut child = cmd.spawn().map_err(|source| DeployError::Spawn {
        what: format!("replica {index} ({})", launch.binary.display()),
        source,
    })?;
    let stdout = child.stdout.take();
    let process = ChildProcess::new(child, format!("replica {index}"));
    let first_line = read_first_line(stdout, index)?;
    Ok((process, log, first_line))
}

fn stderr_tail(log: &Option<PathBuf>) -> String {
    log.as_deref()
        .map(|p| log_tail(p, STDERR_TAIL_LINES))
        .unwrap_or_else(|| "(stderr not captured: LOADGEN_LOG set)".into())
}

/// The replica's startup line, which must be its own (`pid` is the process we started).
fn parse_listening(line: &str, index: u32, pid: u32) -> Result<Listening, DeployError> {
    let listening: Listening = serde_json::from_str(line.trim())
        .ok()
        .filter(|l: &Listening| l.event == "listening")
        .ok_or_else(|| DeployError::BadListeningLine {
            index,
            line: line.trim().to_string(),
        })?;
    if listening.pid != pid {
        return Err(DeployError::BadListeningLine {
            index,
            line: format!(
                "{} (reports pid {}, we started pid {pid})",
                line.trim(),
                listening.pid,
            ),
        });
    }
    Ok(listening)
}

/// Reads the first stdout line on a thread, which then keeps draining stdout so the child can
/// never block on a full pipe.
fn read_first_line(
    stdout: Option<std::process::ChildStdout>,
    index: u32,
) -> Result<tokio::sync::oneshot::Receiver<String>, DeployError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let Some(stdout) = stdout else {
        return Ok(rx);
    };
    std::thread::Builder::new()
        .name(format!("replica-{index}-stdout"))
        .spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            if matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                let _ = tx.send(line);
            }
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        })
        .map_err(|source| DeployError::Spawn {
            what: format!("replica {index} stdout reader"),
            source,
        })?;
    Ok(rx)
}

async fn exit_status(process: &mut ChildProcess) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + EXIT_STATUS_BOUND;
    loop {
        if let Some(s) = process.try_exited() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

impl Replica {
    /// Polls `/readyz` until 200, the replica exits, or `deadline`.
    pub(super) async fn wait_ready(&mut self, deadline: Instant) -> Result<(), DeployError> {
        let url = format!("{}/readyz", self.admin_url);
        loop {
            let last = match http::get(&url, READY_REQUEST_TIMEOUT).await {
                Ok((200, _)) => return Ok(()),
                Ok((status, _)) => format!("/readyz answered {status}"),
                Err(e) => format!("/readyz: {e}"),
            };
            if let Some(status) = self.process.try_exited() {
                return Err(DeployError::ReplicaExited {
                    index: self.index,
                    status: status.to_string(),
                    stderr: self
                        .log
                        .as_deref()
                        .map(|p| log_tail(p, STDERR_TAIL_LINES))
                        .unwrap_or_default(),
                });
            }
            if Instant::now() >= deadline {
                return Err(DeployError::NotReady {
                    index: self.index,
                    reason: last,
                });
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The port of the shared service address.
    pub fn port(&self) -> Option<u16> {
        self.addr.rsplit(':').next()?.parse().ok()
    }

    /// Asks the replica to drain and exit (SIGTERM), without waiting.
    pub(super) fn terminate(&self) {
        self.process.terminate();
    }

    /// Waits for the exit after [`Replica::terminate`], SIGKILL after `grace`; then removes
    /// the cgroup. Returns what could not be cleaned up.
    pub(super) async fn finish(&mut self, grace: Duration) -> Vec<String> {
        let mut problems = Vec::new();
        match self.process.wait_or_kill(grace).await {
            Stopped::Exited(_) => {}
            Stopped::Killed => tracing::warn!(
                "replica {} (pid {}) did not drain within {grace:?}; killed",
                self.index,
                self.pid
            ),
            Stopped::Unreaped => problems.push(format!(
                "replica {} (pid {}) could not be reaped",
                self.index, self.pid
            )),
        }
        if let Some(group) = self.cgroup.as_mut() {
            if let Err(e) = group.remove() {
                problems.push(format!("cgroup {}: {e}", group.name()));
            }
        }
        problems
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_passed_in_exact_integer_units() {
        assert_eq!(format_cost(Duration::from_micros(5_500)), "5500us");
        assert_eq!(format_cost(Duration::ZERO), "0us");
        assert_eq!(format_cost(Duration::from_nanos(1_500)), "1500ns");
    }

    #[test]
    fn the_startup_line_parses_plain_and_as_a_json_log_line() {
        let plain =
            r#"{"event":"listening","addr":"127.0.0.1:1","admin_addr":"127.0.0.1:2","pid":9}"#;
        let logged = r#"{"time":"2026-12-01T10:00:00.000001Z","level":"info","message":"polymetrie listening","target":"polymetrie","replica":"r","addr":"127.0.0.1:1","admin_addr":"127.0.0.1:2","event":"listening","pid":9}"#;
        for line in [plain, logged] {
            let l = parse_listening(line, 0, 9).unwrap();
            assert_eq!(
                (l.addr.as_str(), l.admin_addr.as_str()),
                ("127.0.0.1:1", "127.0.0.1:2")
            );
        }
        assert!(
            parse_listening(logged, 0, 10).is_err(),
            "another process's line"
        );
    }
}
