//! The Redis server a `store = "redis"` deployment shares between its replicas: Debian
//! `redis-server` on a free loopback port, persistence off, ready when it answers PING.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::process::{ChildProcess, Stopped};
use super::workdir::log_tail;
use super::DeployError;
use cpu_cgroup::Cgroup;

/// Ports are picked by binding port 0 then releasing it; another process may take the port in
/// between, so starting is retried a few times.
const START_ATTEMPTS: u32 = 3;
const PING_POLL: Duration = Duration::from_millis(20);
/// Bound of one PING round trip.
const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// How long Redis gets to exit after SIGTERM (it saves nothing: persistence is off).
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// A running `redis-server` child.
#[derive(Debug)]
pub struct RedisServer {
    // Declared before `cgroup`: on drop the process is killed before its group is removed.
    process: ChildProcess,
    port: u16,
    /// An accounting-only group, so a Redis orphaned by a killed loadgen can be found and
    /// stopped by the next run's sweep.
    cgroup: Option<Cgroup>,
}

impl RedisServer {
    /// Starts `binary` (inside `cgroup` when given) with its working dir and log in `dir`,
    /// ready (PING answered) before `deadline`.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        cgroup: Option<Cgroup>,
        deadline: Instant,
    ) -> Result<Self, DeployError> {
        let mut last_err = String::new();
        for attempt in 0..START_ATTEMPTS {
            let port = free_loopback_port()
                .map_err(|e| DeployError::Redis(format!("no free loopback port: {e}")))?;
            let log = dir.join(format!("redis-{attempt}.log"));
            let log_file = std::fs::File::create(&log)
                .map_err(|e| DeployError::Redis(format!("{}: {e}", log.display())))?;
            let err_file = log_file
                .try_clone()
                .map_err(|e| DeployError::Redis(format!("{}: {e}", log.display())))?;
            let mut cmd = match &cgroup {
                Some(group) => group.command(binary),
                None => Command::new(binary),
            };
            let child = cmd
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(err_file)
                .spawn()
                .map_err(|source| DeployError::Spawn {
                    what: format!("redis-server ({})", binary.display()),
                    source,
                })?;
            let mut process = ChildProcess::new(child, "redis-server");
            loop {
                if ping(port).await {
                    return Ok(RedisServer {
                        process,
                        port,
                        cgroup,
                    });
                }
                if let Some(status) = process.try_exited() {
                    last_err = format!("exited ({status}): {}", log_tail(&log, 3));
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(DeployError::Redis(format!(
                        "no PONG on port {port} before the readiness bound: {}",
                        log_tail(&log, 3)
                    )));
                }
                tokio::time::sleep(PING_POLL).await;
            }
            // The exited child is reaped; retry on another port.
        }
        Err(DeployError::Redis(format!(
            "failed to start after {START_ATTEMPTS} attempts: {last_err}"
        )))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The `--store` argument for replicas.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGTERM, bounded wait, SIGKILL; then removes its cgroup. Returns what was left.
    pub async fn stop(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Stopped::Unreaped = self.process.stop(STOP_GRACE).await {
            problems.push(format!(
                "redis-server (pid {}) could not be reaped",
                self.pid()
            ));
        }
        if let Some(group) = self.cgroup.as_mut() {
            if let Err(e) = group.remove() {
                problems.push(format!("cgroup {}: {e}", group.name()));
            }
        }
        problems
    }
}

/// A loopback port nobody listens on right now.
pub fn free_loopback_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// True when a Redis on `port` answers PING with PONG.
pub async fn ping(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 16];
        let n = stream.read(&mut buf).await.ok()?;
        buf[..n].starts_with(b"+PONG").then_some(())
    };
    matches!(
        tokio::time::timeout(PING_TIMEOUT, attempt).await,
        Ok(Some(()))
    )
}
