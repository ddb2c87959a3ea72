//! `polymetrie`: the click-counting service that loadgen campaigns run against — a rewrite
//! of the TD4 report's Flask service on tokio + hyper. [`run`] binds, prints the startup line,
//! serves until SIGTERM/SIGINT and drains.

pub mod admin_token;
pub mod admission;
pub mod app;
pub mod cgroup;
pub mod config;
pub mod cost;
pub mod metrics;
pub mod server;
pub mod store;
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

/// Runs the service until SIGTERM or SIGINT, then drains within `--drain-timeout`.
pub async fn run(config: Config) -> Result<(), ServiceError> {
    // First, so a bad token file stops the start before anything is bound.
    let registration = admin_token::Registration::load(config.admin_token_file.as_deref())?;
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

    let bind = |addr: SocketAddr| {
        server::bind(addr, config.reuse_port, config.backlog)
            .map_err(|source| ServiceError::Bind { addr, source })
    };
    let main = bind(config.listen)?;
    let main_addr = main.local_addr().map_err(|source| ServiceError::Bind {
        addr: config.listen,
        source,
    })?;
    let mut admin = None;
    let mut admin_addr = None;
    if let Some(a) = config.admin_listen {
        // The admin listener is per replica: never shared, so no SO_REUSEPORT.
        let l = server::bind(a, false, config.backlog)
            .map_err(|source| ServiceError::Bind { addr: a, source })?;
        admin_addr = Some(
            l.local_addr()
                .map_err(|source| ServiceError::Bind { addr: a, source })?,
        );
        admin = Some(l);
    }
    let listeners = server::Listeners { main, admin };

    let shutdown = server::Shutdown::new();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(ServiceError::Signal)?;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(ServiceError::Signal)?;
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = sigterm.recv() => tracing::info!("SIGTERM: draining"),
                _ = sigint.recv() => tracing::info!("SIGINT: draining"),
            }
            shutdown.trigger();
        });
    }

    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", startup_line(main_addr, admin_addr)).map_err(ServiceError::Stdout)?;
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
        "polymetrie listening"
    );

    let limits = server::ConnectionLimits {
        header_timeout: config.header_timeout,
        drain_timeout: config.drain_timeout,
    };
    let drained = server::serve(listeners, app, limits, shutdown).await;
    tracing::info!(drained, "polymetrie stopped");
    Ok(())
}
