//! `--metrics-addr`, `--live` and `--live-linger` of `run` and `attack`: starts the watchers'
//! servers before the run, hands their event sinks to it, tells where they listen (stderr), and
//! keeps the live page up a while after the run when asked to.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use loadgen::campaign::Events;
use loadgen::watch::live::LivePage;
use loadgen::watch::metrics::RunMetrics;
use loadgen::watch::server::{Reply, Server};

/// Where the default `--live` listens: loopback only.
pub const LIVE_DEFAULT: &str = "127.0.0.1:6565";

#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    /// Serve loadgen's own metrics for Prometheus at http://ADDR/metrics while the run lasts
    /// (e.g. 127.0.0.1:9464; 0.0.0.0:9464 in a pod for a PodMonitor; port 0 picks one). With
    /// `--prometheus managed`, the managed Prometheus scrapes it too (job `generator`).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub metrics_addr: Option<String>,
    /// Serve a live page of the run at http://ADDR/ (default 127.0.0.1:6565): the plan, the
    /// current step's rates and latency, each finished step, the findings. Read-only.
    #[arg(long, value_name = "HOST:PORT", num_args = 0..=1, default_missing_value = LIVE_DEFAULT, value_parser = host_port)]
    pub live: Option<String>,
    /// Keep the live page (and its links to report.html and run.json) up this long after the
    /// run, e.g. 10m; Ctrl-C ends the wait.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = humantime::parse_duration, requires = "live")]
    pub live_linger: Duration,
}

/// `HOST:PORT` (a name or an address, and a port): said early, since `--live SCENARIO` would
/// otherwise take the scenario for an address.
fn host_port(s: &str) -> Result<String, String> {
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(s.to_string()),
        _ => Err(format!(
            "expected HOST:PORT, e.g. 127.0.0.1:6565 (with no address, put --live after the \
             scenario or write --live={LIVE_DEFAULT})"
        )),
    }
}

/// The started watchers of one run.
pub struct Watchers {
    metrics: Option<(Arc<RunMetrics>, Server)>,
    live: Option<(Arc<LivePage>, Server)>,
    linger: Duration,
}

impl Watchers {
    /// Starts the servers asked for (inside a runtime); an address that cannot be listened on
    /// is an error before anything runs.
    pub async fn start(args: &WatchArgs) -> anyhow::Result<Watchers> {
        let metrics = match &args.metrics_addr {
            Some(addr) => {
                let m = RunMetrics::new();
                let scrape = m.clone();
                let handler = Arc::new(move |path: &str| match path {
                    "/metrics" => {
                        Reply::ok("text/plain; version=0.0.4; charset=utf-8", scrape.encode())
                    }
                    _ => Reply::not_found(),
                });
                let server = Server::start(addr, handler).await?;
                eprintln!("metrics: http://{}/metrics", server.addr());
                Some((m, server))
            }
            None => None,
        };
        let live = match &args.live {
            Some(addr) => {
                let page = LivePage::new();
                let server = Server::start(addr, page.handler()).await?;
                eprintln!("live: http://{}/", server.addr());
                Some((page, server))
            }
            None => None,
        };
        Ok(Watchers {
            metrics,
            live,
            linger: args.live_linger,
        })
    }

    /// True when a watcher wants the run's progress events.
    pub fn wants_progress(&self) -> bool {
        self.metrics.is_some() || self.live.is_some()
    }

    /// `sink` followed by every watcher's sink.
    pub fn events(&self, sink: Events) -> Events {
        let mut sinks = vec![sink];
        sinks.extend(self.metrics.as_ref().map(|(m, _)| m.sink()));
        sinks.extend(self.live.as_ref().map(|(p, _)| p.sink()));
        Events::fan_out(sinks)
    }

    /// The metrics endpoint as a scrape target (`127.0.0.1:PORT` when it listens on every
    /// address), for the managed Prometheus.
    pub fn metrics_target(&self) -> Option<String> {
        let addr = self.metrics.as_ref()?.1.addr();
        Some(if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        })
    }

    /// After the run (its files written): the live page links them and stays up
    /// `--live-linger`, until Ctrl-C; not after an interrupted run, whose user wants out.
    pub fn after_run(&self, runtime: &tokio::runtime::Runtime, interrupted: bool) {
        if interrupted {
            return;
        }
        runtime.block_on(async {
            let stop = CancellationToken::new();
            let signals = tokio::spawn(super::signal::watch(stop.clone(), "ending the live page"));
            self.linger(&stop).await;
            signals.abort();
        });
    }

    /// The run's files are written: the live page links them, and stays up `--live-linger`
    /// (until `stop`).
    async fn linger(&self, stop: &CancellationToken) {
        let Some((page, server)) = &self.live else {
            return;
        };
        page.files_written();
        if self.linger.is_zero() {
            return;
        }
        eprintln!(
            "live: the page stays at http://{}/ for {} (Ctrl-C ends it)",
            server.addr(),
            humantime::format_duration(self.linger)
        );
        tokio::select! {
            _ = tokio::time::sleep(self.linger) => {}
            _ = stop.cancelled() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::host_port;

    #[test]
    fn an_address_needs_a_host_and_a_port_and_a_path_is_refused_with_a_hint() {
        assert!(host_port("127.0.0.1:0").is_ok());
        assert!(host_port("[::1]:9464").is_ok());
        assert!(host_port("localhost:6565").is_ok());
        let e = host_port("scenarios/td4.toml").unwrap_err();
        assert!(e.contains("--live after the scenario"), "{e}");
        assert!(host_port(":9464").is_err());
        assert!(host_port("127.0.0.1:99999").is_err());
    }
}
