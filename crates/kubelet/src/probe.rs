//! Readiness probes, run as a kubelet runs them: `httpGet` and `tcpSocket` from the host to the
//! pod's address, `exec` inside the pod's network namespace, every `periodSeconds` after
//! `initialDelaySeconds`, each bounded by `timeoutSeconds`, the result flipping only after
//! `successThreshold` / `failureThreshold` results in a row. Liveness and startup probes are
//! not run by the stand-in.

use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

#[derive(Debug, Clone, PartialEq)]
enum Check {
    Http { port: u16, path: String },
    Tcp { port: u16 },
    Exec { command: Vec<String> },
}

/// One container's readiness probe and its streak.
#[derive(Debug, Clone)]
pub struct Prober {
    check: Check,
    period: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
    next: Instant,
    successes: u32,
    failures: u32,
}

/// A named or numbered port of the container.
fn port(c: &Container, p: &IntOrString) -> Option<u16> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name))
            .and_then(|cp| u16::try_from(cp.container_port).ok()),
    }
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(v.unwrap_or(default).max(0) as u64)
}

impl Prober {
    /// The container's readiness probe, or `Err` when it names something the stand-in cannot run.
    pub fn readiness(c: &Container) -> Result<Option<Prober>, String> {
        let Some(p) = &c.readiness_probe else {
            return Ok(None);
        };
        Ok(Some(Prober::new(c, p)?))
    }

    fn new(c: &Container, p: &Probe) -> Result<Prober, String> {
        let check = if let Some(h) = &p.http_get {
            Check::Http {
                port: port(c, &h.port).ok_or("httpGet probe: unknown port")?,
                path: h.path.clone().unwrap_or("/".into()),
            }
        } else if let Some(t) = &p.tcp_socket {
            Check::Tcp {
                port: port(c, &t.port).ok_or("tcpSocket probe: unknown port")?,
            }
        } else if let Some(e) = &p.exec {
            Check::Exec {
                command: e.command.clone().unwrap_or_default(),
            }
        } else {
            return Err("a probe kind the stand-in does not run (grpc)".into());
        };
        Ok(Prober {
            check,
            period: secs(p.period_seconds, 10).max(Duration::from_millis(500)),
            timeout: secs(p.timeout_seconds, 1),
            success_threshold: p.success_threshold.unwrap_or(1).max(1) as u32,
            failure_threshold: p.failure_threshold.unwrap_or(3).max(1) as u32,
            next: Instant::now() + secs(p.initial_delay_seconds, 0),
            successes: 0,
            failures: 0,
        })
    }

    /// Starts over (a restarted container is not ready until probed again).
    pub fn reset(&mut self) {
        self.successes = 0;
        self.failures = 0;
        self.next = Instant::now();
    }

    pub fn due(&self) -> bool {
        Instant::now() >= self.next
    }

    /// Runs the probe once; returns the new readiness when a threshold is crossed.
    /// Until the first success after a start, probes run every 500 ms so a pod is Ready as soon
    /// as it answers (a kubelet probes at `periodSeconds`; waiting for it only slows tests).
    pub async fn run(&mut self, ready: bool, ip: Ipv4Addr, netns: &str) -> Option<bool> {
        let ok = matches!(timeout(self.timeout, self.once(ip, netns)).await, Ok(true));
        let fast = !ready && self.successes == 0;
        self.next = Instant::now()
            + if fast {
                Duration::from_millis(500)
            } else {
                self.period
            };
        if ok {
            self.failures = 0;
            self.successes += 1;
            (!ready && self.successes >= self.success_threshold).then_some(true)
        } else {
            self.successes = 0;
            self.failures += 1;
            (ready && self.failures >= self.failure_threshold).then_some(false)
        }
    }

    async fn once(&self, ip: Ipv4Addr, netns: &str) -> bool {
        match &self.check {
            Check::Tcp { port } => TcpStream::connect((ip, *port)).await.is_ok(),
            Check::Http { port, path } => http_ok(ip, *port, path).await,
            Check::Exec { command } if !command.is_empty() => {
                tokio::process::Command::new(crate::network::ip_program())
                    .args(["netns", "exec", netns])
                    .args(command)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .is_ok_and(|s| s.success())
            }
            Check::Exec { .. } => false,
        }
    }
}

/// A GET whose status is 2xx or 3xx.
async fn http_ok(ip: Ipv4Addr, port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect((ip, port)).await else {
        return false;
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.37\r\n\
         Connection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => got += n,
        }
    }
    let line = String::from_utf8_lossy(&buf[..got]);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (200..400).contains(&code)
}
