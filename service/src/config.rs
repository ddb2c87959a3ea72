//! The service's configuration: every command-line flag, its `POLYMETRIE_*` environment
//! equivalent and its default, parsed once at startup.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use loadgen_logline::LogFormat;

use crate::regression::Regression;
use crate::url_cap::UrlCap;

/// Where clicks are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// In-process maps: one replica only, lost on exit.
    Memory,
    /// A Redis server (`redis://HOST:PORT[/DB]`), shared by every replica pointing at it.
    Redis(String),
}

impl std::str::FromStr for StoreUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory" {
            Ok(Self::Memory)
        } else if s.starts_with("redis://") {
            Ok(Self::Redis(s.to_string()))
        } else {
            Err(format!(
                "unknown store {s:?}: expected `memory` or `redis://HOST:PORT`"
            ))
        }
    }
}

/// `polymetrie`: the click-counting service that loadgen campaigns run against.
///
/// Example: `polymetrie --listen 127.0.0.1:0 --sites example.com --cost 5.5ms`
#[derive(Debug, Clone, Parser)]
#[command(name = "polymetrie", version, about, long_about = None)]
pub struct Config {
    /// Address of the main listener (port 0 picks a free port; the startup line tells which).
    #[arg(long, env = "POLYMETRIE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Optional second listener serving the same routes, unique per replica, so each replica's
    /// /metrics can be read even when --listen is shared with --reuse-port.
    #[arg(long, env = "POLYMETRIE_ADMIN_LISTEN")]
    pub admin_listen: Option<SocketAddr>,

    /// `memory` or `redis://HOST:PORT`.
    #[arg(long, env = "POLYMETRIE_STORE", default_value = "memory")]
    pub store: StoreUrl,

    /// Pre-registered member sites, comma separated (e.g. `a.com,b.org`).
    #[arg(long, env = "POLYMETRIE_SITES", value_delimiter = ',')]
    pub sites: Vec<String>,

    /// File holding the admin token that `POST /api/sites` must present as
    /// `Authorization: Bearer TOKEN`; read once at start. Without it, registration over HTTP
    /// is off and --sites is the only way to register a site.
    #[arg(long, env = "POLYMETRIE_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// CPU time burnt per click on the thread's CPU clock (e.g. `5.5ms`), emulating the
    /// original's work so that a CFS quota stretches it like real work.
    #[arg(long, env = "POLYMETRIE_COST", default_value = "0s", value_parser = humantime::parse_duration)]
    pub cost: Duration,

    /// Tokio worker threads (default: the CPUs this process may run on).
    #[arg(long, env = "POLYMETRIE_WORKERS")]
    pub workers: Option<usize>,

    /// Clicks processed at once (the gunicorn workers of the original); more wait in a queue.
    #[arg(long, env = "POLYMETRIE_MAX_INFLIGHT", default_value_t = 8)]
    pub max_inflight: usize,

    /// How long a click may wait for an in-flight slot before it is shed with 503.
    #[arg(long, env = "POLYMETRIE_QUEUE_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub queue_timeout: Duration,

    /// PEM certificate chain (leaf first) for the main listener: with it (and --tls-key) the
    /// main listener serves HTTPS only. The admin listener (--admin-listen: /readyz, /metrics)
    /// always stays plain HTTP, because loadgen probes it over plain HTTP.
    #[arg(
        long,
        env = "POLYMETRIE_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key (PKCS#8, PKCS#1 or SEC1) matching --tls-cert; required with it.
    #[arg(
        long,
        env = "POLYMETRIE_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Also serve HTTP/2 on the main listener: with TLS, offered by ALPN (`h2`, then
    /// `http/1.1`); without TLS, HTTP/2 with prior knowledge (h2c) beside HTTP/1.1 on the same
    /// port. Off: HTTP/1.1 only.
    #[arg(long, env = "POLYMETRIE_HTTP2")]
    pub http2: bool,

    /// Bind with SO_REUSEPORT so several replicas can share --listen.
    #[arg(long, env = "POLYMETRIE_REUSE_PORT")]
    pub reuse_port: bool,

    /// Largest accepted request body, in bytes (413 above).
    #[arg(long, env = "POLYMETRIE_BODY_LIMIT", default_value_t = 16 * 1024)]
    pub body_limit: usize,

    /// A connection that has not sent complete request headers within this is cut.
    #[arg(long, env = "POLYMETRIE_HEADER_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,

    /// A request whose body is not complete within this gets 408 and its connection is closed.
    #[arg(long, env = "POLYMETRIE_BODY_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub body_timeout: Duration,

    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish before exit.
    #[arg(long, env = "POLYMETRIE_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// Distinct URLs per site, both kept in the store and as /metrics label values; further
    /// URLs count under `__other__` (still once in the site's total).
    #[arg(long, env = "POLYMETRIE_URL_LABEL_CAP", default_value_t = 100)]
    pub url_label_cap: usize,

    /// URLs listed in GET /api/sites/{site}/stats.
    #[arg(long, env = "POLYMETRIE_TOP_URLS", default_value_t = 10)]
    pub top_urls: usize,

    /// Bound on each store operation (Redis round trip); past it the request gets 503.
    #[arg(long, env = "POLYMETRIE_STORE_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub store_timeout: Duration,

    /// Listen backlog (connections the kernel queues before accept).
    #[arg(long, env = "POLYMETRIE_BACKLOG", default_value_t = 1024)]
    pub backlog: i32,

    /// A deliberate regression, for showing that a capacity check catches one: genuine extra
    /// work per click, counted in polymetrie_regression_work_total. `json-revalidate:N`
    /// parses and validates each click's JSON N more times; `store-roundtrips:N` asks the
    /// store N more times whether the site exists (N more Redis round trips). Off (`none`) by
    /// default.
    #[arg(
        long,
        env = "POLYMETRIE_REGRESSION",
        default_value = "none",
        value_name = "none|json-revalidate:N|store-roundtrips:N"
    )]
    pub regression: Regression,

    /// How stderr logs: `text` for people, or `json`, one object per line with stable keys
    /// (`time`, `level`, `message`, `target`, `replica`) for a log pipeline (docs/logs.md).
    /// The startup line on stdout is JSON either way (with `json`, a full log line too).
    #[arg(
        long,
        env = "POLYMETRIE_LOG_FORMAT",
        default_value = "text",
        value_name = "text|json"
    )]
    pub log_format: LogFormat,

    /// This replica's name: the `replica` key of every JSON log line. Default: $HOSTNAME when
    /// it is set, which in Kubernetes is the pod's name.
    #[arg(long, env = "POLYMETRIE_REPLICA", value_name = "NAME")]
    pub replica_name: Option<String>,
}

impl Config {
    /// The one per-site URL cap the store and the metrics both apply.
    pub fn url_cap(&self) -> UrlCap {
        UrlCap::new(self.url_label_cap)
    }

    /// The name logs carry as `replica`: --replica-name, else $HOSTNAME; none when both are
    /// unset or empty (a local run's replicas are told apart by their log files).
    pub fn replica(&self) -> Option<String> {
        let hostname = || std::env::var("HOSTNAME").ok();
        self.replica_name
            .clone()
            .or_else(hostname)
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
    }
}
