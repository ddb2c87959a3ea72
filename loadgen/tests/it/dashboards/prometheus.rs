//! A real Prometheus for the dashboard test, configured as a cluster's would be for the
//! dashboards: two jobs, `loadgen` and `polymetrie`, whose targets (file_sd, rewritten
//! atomically as they come and go) carry a `namespace` and a `pod` label as a PodMonitor's and a
//! ServiceMonitor's would; scraped every second. Killed by its pid, its directory removed, when
//! dropped. Queried over plain HTTP/1.0, so that answers come whole, never chunked.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::queries::Series;

/// How often it scrapes (and re-reads its targets files).
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on `/-/ready` after the start (a busy 2-core machine).
const READY_BOUND: Duration = Duration::from_secs(30);
/// Bound on one HTTP exchange with it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The namespace label every target gets, as if scraped in the overlays' namespace.
pub const NAMESPACE: &str = "loadgen";
/// Attempts at a free port: another process may take it between the probe and the bind.
const PORT_ATTEMPTS: u32 = 3;

/// A running Prometheus.
pub struct TestPrometheus {
    child: Child,
    pub addr: SocketAddr,
    dir: PathBuf,
}

fn config(dir: &Path) -> String {
    let job = |name: &str| {
        format!(
            "  - job_name: {name}\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: 1s\n",
            dir.join(format!("{name}.json")).display()
        )
    };
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\nscrape_configs:\n{}{}",
        job("loadgen"),
        job("polymetrie")
    )
}

impl TestPrometheus {
    /// Starts `binary` with its config and storage under `dir`, and waits until it is ready.
    pub fn start(binary: &Path, dir: &Path) -> TestPrometheus {
        std::fs::write(dir.join("prometheus.yml"), config(dir)).unwrap();
        for job in ["loadgen", "polymetrie"] {
            std::fs::write(dir.join(format!("{job}.json")), "[]").unwrap();
        }
        let mut last = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let addr = SocketAddr::from(([127, 0, 0, 1], crate::common::unused_port()));
            let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
            let child = Command::new(binary)
                .arg(format!(
                    "--config.file={}",
                    dir.join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("spawn prometheus");
            let mut p = TestPrometheus {
                child,
                addr,
                dir: dir.to_path_buf(),
            };
            match p.wait_ready() {
                Ok(()) => return p,
                Err(e) => last = e,
            }
        }
        panic!("prometheus did not start: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_BOUND;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log_tail()));
            }
            if get(self.addr, "/-/ready").is_some_and(|(status, _)| status == 200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "not ready after {READY_BOUND:?}: {}",
            self.log_tail()
        ))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(5).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }

    /// Replaces the targets of `job`: `(host:port, pod)` each, labelled with [`NAMESPACE`] and
    /// the pod. Written to a temporary file and renamed, so Prometheus never reads half of it.
    pub fn set_targets(&self, job: &str, targets: &[(String, String)]) {
        let groups: Vec<Value> = targets
            .iter()
            .map(|(addr, pod)| json!({"targets": [addr], "labels": {"namespace": NAMESPACE, "pod": pod}}))
            .collect();
        let tmp = self.dir.join(format!("{job}.json.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(&groups).unwrap()).unwrap();
        std::fs::rename(&tmp, self.dir.join(format!("{job}.json"))).unwrap();
    }

    /// `query_range` of `expr` from `start` to `end` (Unix seconds) every `step`: the series, or
    /// Prometheus' error.
    pub fn range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: Duration,
    ) -> Result<Vec<Series>, String> {
        let path = format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={}",
            encode(expr),
            step.as_secs_f64()
        );
        let (status, body) = get(self.addr, &path).ok_or("no answer from prometheus")?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("{status}: {}: {}", v["errorType"], v["error"]));
        }
        Ok(v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| Series {
                labels: s["metric"].to_string(),
                values: s["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p[1].as_str()?.parse::<f64>().ok())
                    .collect(),
            })
            .collect())
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(self.dir.join("data"));
    }
}

/// Percent-encodes a query parameter (everything but RFC 3986's unreserved characters).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One `GET path` as HTTP/1.0 (the answer ends with the connection, never chunked), bounded:
/// `(status, body)`, or `None` when nothing usable came back.
pub fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT).ok()?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(REQUEST_TIMEOUT)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_parameters_are_percent_encoded() {
        assert_eq!(
            super::encode(r#"sum(x{job=~"a|b"}[4s]) + 1"#),
            "sum%28x%7Bjob%3D~%22a%7Cb%22%7D%5B4s%5D%29%20%2B%201"
        );
    }
}
