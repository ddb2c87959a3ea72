//! The managed local Prometheus: Debian's `prometheus` started on a free loopback port with a
//! generated config (1 s scrape of the targets listed in a `file_sd` JSON file that
//! [`ManagedPrometheus::set_targets`] rewrites atomically as replicas come and go per step) and
//! a temporary storage directory; stopped, and its directory removed, by
//! [`ManagedPrometheus::shutdown`] or, as a last resort, on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::process::{Child, Command};

use super::PrometheusError;
use cpu_cgroup::{Cgroup, CgroupLayout, CGROUP_ROOT, NAME_PREFIX};

/// How often the managed Prometheus scrapes each replica.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How often it re-reads the targets file (it also watches it with inotify).
pub const TARGETS_REFRESH: Duration = Duration::from_secs(1);
/// Bound on "started and answering `/-/ready`" (it takes < 0.2 s here, far more on a busy box).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at a free port: another process may take the port between our probe and the bind.
pub const PORT_ATTEMPTS: u32 = 3;
/// Bound on the process's exit after it is killed.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Poll period of every wait on the server.
pub const POLL: Duration = Duration::from_millis(100);

/// A running local Prometheus loadgen started and must stop.
#[derive(Debug)]
pub struct ManagedPrometheus {
    child: Option<Child>,
    /// An accounting-only cgroup named after this loadgen, so that a Prometheus orphaned by a
    /// killed loadgen is found and stopped by the next run's sweep (declared after `child`:
    /// the process goes before its group). Held for its `Drop`, which removes the group.
    _cgroup: Option<Cgroup>,
    pid: u32,
    dir: PathBuf,
    url: String,
    targets_file: PathBuf,
}

impl ManagedPrometheus {
    /// Starts `prometheus` and waits until it answers `/-/ready`.
    pub async fn start() -> Result<Self, PrometheusError> {
        Self::start_scraping(None).await
    }

    /// [`ManagedPrometheus::start`], also scraping loadgen's own metrics at `generator`
    /// (`host:port`, path `/metrics`) as job `generator`.
    pub async fn start_scraping(generator: Option<&str>) -> Result<Self, PrometheusError> {
        let binary = crate::external::require("prometheus", "prometheus")
            .map_err(|e| PrometheusError::Start(e.to_string()))?;
        let dir = temp_dir()?;
        let targets_file = dir.join("targets.json");
        let config = dir.join("prometheus.yml");
        let write = |p: &Path, s: &str| {
            std::fs::write(p, s)
                .map_err(|e| PrometheusError::Start(format!("writing {}: {e}", p.display())))
        };
        write(&targets_file, "[]\n")?;
        write(&config, &config_yaml(&targets_file, generator))?;
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let log = std::fs::File::create(dir.join("prometheus.log"))
                .map_err(|e| PrometheusError::Start(format!("creating log: {e}")))?;
            let log2 = log
                .try_clone()
                .map_err(|e| PrometheusError::Start(format!("creating log: {e}")))?;
            let cgroup = accounting_group();
            let mut command = match &cgroup {
                Some(g) => Command::from(g.command(&binary)),
                None => Command::new(&binary),
            };
            let child = command
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    PrometheusError::Start(format!("spawning {}: {e}", binary.display()))
                })?;
            let pid = child.id().unwrap_or(0);
            let mut server = ManagedPrometheus {
                child: Some(child),
                _cgroup: cgroup,
                pid,
                dir: dir.clone(),
                url: format!("http://127.0.0.1:{port}"),
                targets_file: targets_file.clone(),
            };
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) => {
                    last_error = e.to_string();
                    server.kill_and_wait().await;
                    server.dir = PathBuf::new(); // keep the directory for the next attempt
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        Err(PrometheusError::Start(last_error))
    }

    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id, for checking that it is gone after shutdown.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The temporary directory (config, targets, storage, log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Replaces the scrape targets with `urls` (`http://host:port/path`, one per replica),
    /// labelled `step` and `replica` (their index); each URL's path becomes its target's
    /// `__metrics_path__`. Written to a temporary file and renamed, so Prometheus never reads
    /// half a file.
    pub fn set_targets(&self, step: &str, urls: &[String]) -> Result<(), PrometheusError> {
        let groups = urls
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (authority, path) = split_url(u)?;
                Ok(serde_json::json!({
                    "targets": [authority],
                    "labels": {"step": step, "replica": i.to_string(), "__metrics_path__": path}
                }))
            })
            .collect::<Result<Vec<_>, PrometheusError>>()?;
        let text = serde_json::to_string_pretty(&groups).unwrap_or_else(|_| "[]".into());
        loadgen_model::atomic_file::write(&self.targets_file, text.as_bytes())
            .map_err(|e| PrometheusError::Targets(e.to_string()))
    }

    /// Kills the process, waits for it to exit (bounded) and removes the directory.
    pub async fn shutdown(mut self) {
        self.kill_and_wait().await;
        let _ = std::fs::remove_dir_all(&self.dir);
        self.dir = PathBuf::new();
    }

    // SIGKILL rather than SIGTERM: the storage is thrown away, so there is nothing to flush,
    // and sending a signal other than KILL would need `unsafe` libc.
    async fn kill_and_wait(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await;
        }
    }

    async fn wait_ready(&mut self) -> Result<(), PrometheusError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/-/ready", self.url);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(PrometheusError::Start(format!(
                        "prometheus exited with {status} before it was ready: {}",
                        self.log_tail()
                    )));
                }
            }
            if super::http_get_ok(&url).await {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(PrometheusError::Start(format!(
            "prometheus not ready after {:?}: {}",
            READY_TIMEOUT,
            self.log_tail()
        )))
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(3).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for ManagedPrometheus {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// `http://host:port/path` as the target `host:port` and its metrics path (`/metrics` when
/// the URL has none). Only `http`: the managed Prometheus scrapes loopback replicas.
fn split_url(url: &str) -> Result<(&str, &str), PrometheusError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| PrometheusError::Targets(format!("{url}: expected an http:// URL")))?;
    Ok(match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    })
}

/// The generated configuration: the replicas (job `loadgen`, from the targets file) and, when
/// given, loadgen's own metrics endpoint (job `generator`).
pub fn config_yaml(targets_file: &Path, generator: Option<&str>) -> String {
    let s = SCRAPE_INTERVAL.as_secs_f64();
    let generator = generator.map_or(String::new(), |g| {
        format!("  - job_name: generator\n    static_configs:\n      - targets: ['{g}']\n")
    });
    format!(
        "# generated by loadgen: scrapes the replicas of the current step\n\
         global:\n  scrape_interval: {s}s\n  scrape_timeout: {s}s\n  evaluation_interval: {s}s\n\
         scrape_configs:\n  - job_name: loadgen\n    file_sd_configs:\n      - files: ['{}']\n        refresh_interval: {}s\n{generator}",
        targets_file.display(),
        TARGETS_REFRESH.as_secs_f64()
    )
}

/// A loopback port nobody listens on right now (bind 0, read, close).
pub fn free_port() -> Result<u16, PrometheusError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| PrometheusError::Start(format!("finding a free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| PrometheusError::Start(format!("finding a free port: {e}")))
}

/// A group for the managed Prometheus, when cgroups can be written (otherwise it runs outside
/// one, and only this process's own exit paths stop it).
fn accounting_group() -> Option<Cgroup> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let layout = CgroupLayout::detect(std::path::Path::new(CGROUP_ROOT)).ok()?;
    let name = format!(
        "{NAME_PREFIX}{}-prometheus-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    Cgroup::create(&layout, &name, None)
        .map_err(|e| tracing::debug!("managed prometheus runs outside a cgroup: {e}"))
        .ok()
}

fn temp_dir() -> Result<PathBuf, PrometheusError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "loadgen-prometheus-{}-{nanos}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| PrometheusError::Start(format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn a_scrape_url_becomes_a_target_and_its_metrics_path() {
        assert_eq!(
            split_url("http://127.0.0.1:9100/custom/metrics").unwrap(),
            ("127.0.0.1:9100", "/custom/metrics")
        );
        assert_eq!(
            split_url("http://127.0.0.1:9100").unwrap(),
            ("127.0.0.1:9100", "/metrics")
        );
        let err = split_url("https://127.0.0.1:9100/metrics").unwrap_err();
        assert!(err.to_string().contains("expected an http:// URL"), "{err}");
    }
}
