//! `polymetrie`: the click-counting service that loadgen campaigns run against — a rewrite
//! of the TD4 report's Flask service on tokio + hyper. [`run`] binds, prints the startup line,
//! serves (HTTP/1.1; with flags also TLS and HTTP/2) until SIGTERM/SIGINT and drains.

pub mod admin_token;
pub mod admission;
pub mod app;
pub mod config;
pub mod cost;
pub mod metrics;
pub mod regression;
pub mod server;
pub mod store;
pub mod tls;
pub mod url_cap;
pub mod validation;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

pub use crate::app::App;
pub use crate::config::{Config, StoreUrl};

/// Why the service could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    AdminToken(#[from] admin_token::TokenError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot install signal handler: {0}")]
    Signal(std::io::Error),
    #[error("cannot write the startup line: {0}")]
    Stdout(std::io::Error),
}

/// The one line printed on stdout once every listener is bound.
pub fn startup_line(addr: SocketAddr, admin: Option<SocketAddr>) -> String {
    #[derive(serde::Serialize)]
    struct Listening {
        event: &'static str,
        addr: String,
        admin_addr: Option<String>,
        pid: u32,
    }
    serde_json::to_string(&Listening {
        event: "listening",
        addr: addr.to_string(),
        admin_addr: admin.map(|a| a.to_string()),
        pid: std::process::id(),
    })
    .unwrap_or_default()
}

/// The startup line of `--log-format json`: the same keys (every reader of the line keeps
/// working), inside a full log line (`time`, `level`, …), because a container's stdout and
/// stderr end up in one log and a pipeline should read every line of it alike.
pub fn startup_log_line(
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    replica: Option<String>,
) -> String {
    let fields = match serde_json::from_str(&startup_line(addr, admin)) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    log_line(
        loadgen_logline::Level::Info,
        "polymetrie listening",
        fields,
        replica,
    )
}

/// One JSON log line (`loadgen_logline`) written outside tracing: the startup line, and why
/// the process exits when it cannot run.
pub fn log_line(
    level: loadgen_logline::Level,
    message: &str,
    mut fields: serde_json::Map<String, serde_json::Value>,
    replica: Option<String>,
) -> String {
    use loadgen_logline::line;
    if let Some(name) = replica {
        line::insert_stable(&mut fields, line::REPLICA, name.into());
    }
    loadgen_logline::render_line(
        std::time::SystemTime::now(),
        level,
        "polymetrie",
        message,
        fields,
    )
}

/// The main listener (shared with other replicas under `--reuse-port`) and the replica's own
/// admin listener, with the addresses they got.
fn bind_listeners(
    config: &Config,
) -> Result<(server::Listeners, SocketAddr, Option<SocketAddr>), ServiceError> {
    let bind = |addr: SocketAddr, reuse: bool| {
        server::bind(addr, reuse, config.backlog)
            .map_err(|source| ServiceError::Bind { addr, source })
    };
    let addr_of = |l: &tokio::net::TcpListener, addr: SocketAddr| {
        l.local_addr()
            .map_err(|source| ServiceError::Bind { addr, source })
    };
    let main = bind(config.listen, config.reuse_port)?;
    let main_addr = addr_of(&main, config.listen)?;
    // The admin listener is per replica: never shared, so no SO_REUSEPORT.
    let admin = config.admin_listen.map(|a| bind(a, false)).transpose()?;
    let admin_addr = match (&admin, config.admin_listen) {
        (Some(l), Some(a)) => Some(addr_of(l, a)?),
        _ => None,
    };
    Ok((server::Listeners { main, admin }, main_addr, admin_addr))
}

/// SIGTERM or SIGINT triggers the drain.
fn watch_signals(shutdown: server::Shutdown) -> Result<(), ServiceError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut sigterm = signal(SignalKind::terminate()).map_err(ServiceError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(ServiceError::Signal)?;
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => tracing::info!("SIGTERM: draining"),
            _ = sigint.recv() => tracing::info!("SIGINT: draining"),
        }
        shutdown.trigger();
    });
    Ok(())
}

/// Runs the service until SIGTERM or SIGINT, then drains within `--drain-timeout`.
pub async fn run(config: Config) -> Result<(), ServiceError> {
    // First, so a bad token file stops the start before anything is bound.
    let registration = admin_token::Registration::load(config.admin_token_file.as_deref())?;
    // Likewise the TLS files. clap makes --tls-cert and --tls-key come together.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key, config.http2)?),
        _ => None,
    };
    let wire = server::Wire::new(tls, config.http2);
    // `POLYMETRIE_SITES=""` or `a, b` must not register an empty or space-padded site.
    let sites: Vec<String> = config
        .sites
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let store = store::Store::open(
        &config.store,
        &sites,
        config.store_timeout,
        config.url_cap(),
    )?;
    let registration_mode = match registration {
        admin_token::Registration::Disabled => "disabled",
        admin_token::Registration::Token(_) => "admin token",
    };
    let app = Arc::new(App::new(&config, store, registration));
    for site in &sites {
        app.metrics.site(site);
    }

    let (listeners, main_addr, admin_addr) = bind_listeners(&config)?;

    let shutdown = server::Shutdown::new();
    watch_signals(shutdown.clone())?;

    let mut out = std::io::stdout().lock();
    let line = match config.log_format {
        loadgen_logline::LogFormat::Text => startup_line(main_addr, admin_addr),
        loadgen_logline::LogFormat::Json => {
            startup_log_line(main_addr, admin_addr, config.replica())
        }
    };
    writeln!(out, "{line}").map_err(ServiceError::Stdout)?;
    out.flush().map_err(ServiceError::Stdout)?;
    drop(out);
    tracing::info!(
        addr = %main_addr,
        admin_addr = ?admin_addr,
        store = ?config.store,
        cost = ?config.cost,
        max_inflight = config.max_inflight,
        queue_timeout = ?config.queue_timeout,
        site_registration = registration_mode,
        wire = ?wire,
        http2 = config.http2,
        "polymetrie listening"
    );

    let limits = server::ConnectionLimits {
        header_timeout: config.header_timeout,
        drain_timeout: config.drain_timeout,
    };
    let drained = server::serve(listeners, wire, app, limits, shutdown).await;
    tracing::info!(drained, "polymetrie stopped");
    Ok(())
}
