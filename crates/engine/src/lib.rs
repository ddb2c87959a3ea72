//! The engine: one open-model step against one target. [`run`] checks the spec, then drives
//! the [`event_loop`] on its own OS thread with a current-thread tokio runtime: no cross-thread
//! wake-ups on the hot path, the campaign runner's own tasks cannot delay the schedule, and the
//! thread's CPU time *is* the generator's cost. The parts: the schedule ([`pacer`], [`load`]),
//! the requests ([`template`], [`client`] over a [`stream`], plain or [`tls`], or as
//! [`http2`] streams, [`pool`], spread over endpoints by [`balance`], each [`tracked`] with its
//! deadline, all within the step's [`limits`]; their I/O on epoll or on [`uring`], as [`io`]
//! picks), the target URL rule ([`target`]), what
//! happened ([`outcome`], [`record`], [`handshake`], [`histogram`], [`usage`]) and the live view
//! ([`progress`]).

pub mod balance;
pub mod buckets;
pub mod client;
pub mod event_loop;
pub mod handshake;
pub mod histogram;
pub mod http2;
pub mod io;
pub mod limits;
pub mod load;
pub mod outcome;
pub mod pacer;
pub mod pool;
pub mod priority;
pub mod progress;
pub mod publish;
pub mod record;
pub mod stream;
pub mod target;
pub mod template;
pub mod timer;
pub mod tls;
pub mod tracked;
pub mod uring;
pub mod usage;
pub mod wait;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::balance::{Budget, Spread};
pub use crate::limits::{Limits, SettingError};
use crate::load::Load;
use crate::pacer::{Pacer, PacerError};
use crate::progress::LiveStats;
use crate::record::StepRecord;
use crate::target::{BaseUrl, Reach, Target, UrlError};
use crate::template::{CompiledTemplate, RequestTemplate, TemplateError};
use crate::tls::{TlsClient, TlsError, TlsSpec};
use loadgen_model::shard::Shard;

/// Bound on the reachability check before the step starts.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// How requests are spread over several endpoints (the replicas' own ports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// Round robin per request, as an Ingress controller or L7 proxy does.
    #[default]
    Request,
    /// Each connection pinned to one endpoint, as kube-proxy does.
    Connection,
}

/// HTTP/2 settings of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2 {
    /// Streams one connection carries at once; a connection is opened when all are full.
    pub max_streams: usize,
}

/// One step to run.
#[derive(Debug, Clone)]
pub struct AttackSpec {
    /// Base URL of the target, scheme and authority only: `http://127.0.0.1:PORT` or
    /// `https://localhost:PORT` (a trailing `/` is accepted). The request path comes from
    /// `request.path`. `https` goes over TLS as `tls` says, with the URL's host as the server
    /// name (SNI and certificate check). Only to a loopback address (127.0.0.0/8, ::1, or a name resolving only to those) unless
    /// `reach` is [`Reach::Remote`].
    ///
    /// With `endpoints` given, no load goes to `url`: it is only parsed, and its authority is
    /// the `Host` header of every request (as a proxy in front of replicas preserves the Host).
    pub url: String,
    /// The base URLs the load goes to, e.g. one per replica. Empty: `url` is the only endpoint.
    /// Each is checked like `url` (loopback unless `reach` is [`Reach::Remote`], resolved before
    /// the step, with the same errors). Requests are spread over them by `balance`.
    pub endpoints: Vec<String>,
    /// How requests are spread over several endpoints (see [`balance`]); moot with one.
    pub balance: Balance,
    /// TLS settings of an `https` URL (they must stay the default for `http`). Endpoints
    /// share the URL's scheme, and its host is the server name of every connection.
    pub tls: TlsSpec,
    /// `Some`: speak HTTP/2 (ALPN `h2` over TLS, prior knowledge on plain TCP), up to this
    /// many streams at once per connection. `None`: HTTP/1.1.
    pub http2: Option<Http2>,
    /// Where load may go (see [`target`]).
    pub reach: Reach,
    pub load: Load,
    pub request: RequestTemplate,
    /// The per-request deadline, the in-flight cap and the connection pool's size.
    pub limits: Limits,
    /// Send only this shard's part of the schedule (`None`: all of it).
    pub shard: Option<Shard>,
    /// Start the schedule at this instant (the shards' common t0) instead of at once; a start
    /// already past begins at once and records by how much it was late.
    pub start_at: Option<SystemTime>,
}

/// Why an attack could not run. Failed requests are never an `AttackError`; they are counted.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    #[error("bad target url {0:?}: {1}")]
    BadUrl(String, String),
    #[error(
        "target {0} is not loopback: load goes only to 127.0.0.0/8, ::1 or localhost unless a \
         scenario sets allow_remote = true in [target] or LOADGEN_ALLOW_REMOTE=1 is set"
    )]
    NotLoopback(String),
    #[error("target {0} is unreachable: {1}")]
    Unreachable(String, String),
    #[error("bad load: {0}")]
    Load(#[from] PacerError),
    #[error("bad request: {0}")]
    Template(#[from] TemplateError),
    #[error("bad attack settings: {0}")]
    Settings(#[from] SettingError),
    #[error("bad TLS settings: {0}")]
    Tls(#[from] TlsError),
    #[error("the io_uring backend cannot run this step: {0}")]
    Uring(String),
    #[error("attack engine failed: {0}")]
    Engine(String),
}

impl AttackError {
    /// The attack's error for a URL the target rule refused.
    pub fn from_url(url: &str, e: UrlError) -> AttackError {
        match e {
            UrlError::NotLoopback(host) => AttackError::NotLoopback(host),
            other => AttackError::BadUrl(url.into(), other.to_string()),
        }
    }
}

/// Resolves a base URL under `reach`: the engine's use of the one target rule.
pub fn resolve_target_with(url: &str, reach: Reach) -> Result<Target, AttackError> {
    let base =
        BaseUrl::parse(url.trim_end_matches('/')).map_err(|e| AttackError::from_url(url, e))?;
    target::resolve(&base, reach).map_err(|e| AttackError::from_url(url, e))
}

/// Resolves a base URL to a loopback socket address; anything else is refused.
pub fn resolve_target(url: &str) -> Result<Target, AttackError> {
    resolve_target_with(url, Reach::Loopback)
}

/// Everything checked before the engine starts.
pub(crate) struct Prepared {
    /// Where requests go, by endpoint index.
    pub(crate) addrs: Vec<SocketAddr>,
    /// The TLS client of an `https` step.
    pub(crate) tls: Option<Arc<TlsClient>>,
    /// The HTTP/2 connections of each endpoint, when the step speaks HTTP/2.
    pub(crate) muxes: Option<Vec<Arc<http2::Mux>>>,
    pub(crate) pacer: Pacer,
    pub(crate) template: CompiledTemplate,
    pub(crate) rate_rps: f64,
    pub(crate) duration: Duration,
    pub(crate) timeout: Duration,
    pub(crate) max_in_flight: usize,
    /// The connection pools and the per-endpoint counts.
    pub(crate) spread: Spread,
    /// The shard and start time, when the step runs as one.
    pub(crate) shard: Option<(Shard, Option<SystemTime>)>,
    /// The I/O backend asked for.
    pub(crate) io: io::IoMode,
}

/// The step's endpoints, resolved under its reach, and the base URL whose authority is the
/// `Host` header and whose scheme and host say TLS and its server name: `url` alone, or
/// exactly `endpoints` with `url` kept for its authority.
fn endpoints(spec: &AttackSpec) -> Result<(Vec<Target>, BaseUrl), AttackError> {
    let base = BaseUrl::parse(spec.url.trim_end_matches('/'))
        .map_err(|e| AttackError::from_url(&spec.url, e))?;
    if spec.endpoints.is_empty() {
        let target = resolve_target_with(&spec.url, spec.reach)?;
        return Ok((vec![target], base));
    }
    for e in &spec.endpoints {
        let b =
            BaseUrl::parse(e.trim_end_matches('/')).map_err(|err| AttackError::from_url(e, err))?;
        if b.tls != base.tls {
            return Err(AttackError::BadUrl(
                e.clone(),
                format!("an endpoint must have the scheme of the url {:?}", spec.url),
            ));
        }
    }
    let targets = spec
        .endpoints
        .iter()
        .map(|e| resolve_target_with(e, spec.reach))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((targets, base))
}

/// The TLS client of an `https` base URL (every file read now; ALPN `h2` when `http2`);
/// `None` for `http`, whose TLS settings must be the default.
pub fn tls_client(
    base: &BaseUrl,
    tls: &TlsSpec,
    http2: bool,
) -> Result<Option<Arc<TlsClient>>, TlsError> {
    if !base.tls {
        return if tls.is_default() {
            Ok(None)
        } else {
            Err(TlsError::NotHttps)
        };
    }
    tls.client(&base.host, http2).map(|c| Some(Arc::new(c)))
}

fn prepare(spec: &AttackSpec) -> Result<Prepared, AttackError> {
    let (targets, base) = endpoints(spec)?;
    let tls = tls_client(&base, &spec.tls, spec.http2.is_some())?;
    if spec.http2.is_some_and(|h| h.max_streams == 0) {
        return Err(SettingError {
            setting: "max_streams",
            expected: ">= 1",
        }
        .into());
    }
    let muxes = spec.http2.map(|h| {
        targets
            .iter()
            .map(|t| {
                let mux = http2::Mux::new(t.addr, tls.clone(), h.max_streams, base.as_url());
                Arc::new(mux)
            })
            .collect()
    });
    let host = base.authority;
    let pacer = Pacer::sharded(&spec.load, spec.shard.unwrap_or(Shard::WHOLE))?;
    let template = spec.request.compile(&host)?;
    spec.limits.check()?;
    let budget = Budget {
        limits: spec.limits,
        peak_rate_rps: spec.load.peak_rate_rps(),
    };
    let pools = balance::pools(spec.balance, targets.len(), budget);
    Ok(Prepared {
        addrs: targets.iter().map(|t| t.addr).collect(),
        tls,
        muxes,
        spread: Spread::new(pools, &spec.endpoints),
        rate_rps: spec.load.nominal_rate_rps(),
        duration: pacer.duration(),
        pacer,
        template,
        timeout: spec.limits.timeout,
        max_in_flight: spec.limits.max_in_flight,
        shard: (spec.shard.is_some() || spec.start_at.is_some())
            .then(|| (spec.shard.unwrap_or(Shard::WHOLE), spec.start_at)),
        io: spec.limits.io,
    })
}

/// A TCP connect to `addr`, bounded by [`PROBE_TIMEOUT`].
async fn probe_one(addr: SocketAddr) -> Result<(), AttackError> {
    match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(AttackError::Unreachable(addr.to_string(), e.to_string())),
        Err(_) => Err(AttackError::Unreachable(
            addr.to_string(),
            format!("no connection within {PROBE_TIMEOUT:?}"),
        )),
    }
}

/// Checks that the target can be reached before the step: every endpoint is probed at once,
/// and the step cannot run only when none answers (a lone target: exactly its error). A dead
/// endpoint among live ones is the service's state, which the step measures: its requests fail
/// as connect errors, counted per endpoint.
async fn probe(addrs: &[SocketAddr]) -> Result<(), AttackError> {
    if let [addr] = addrs {
        return probe_one(*addr).await;
    }
    let results = futures_util::future::join_all(addrs.iter().map(|a| probe_one(*a))).await;
    if results.iter().any(Result::is_ok) {
        for e in results.iter().filter_map(|r| r.as_ref().err()) {
            tracing::warn!("{e}: its requests will be counted as failed");
        }
        return Ok(());
    }
    results
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

/// Why a step cannot use the io_uring backend, if it cannot.
fn not_plain(p: &Prepared) -> Option<&'static str> {
    if p.muxes.is_some() {
        Some("HTTP/2 runs on epoll: its streams are the h2 crate's, driven by tokio")
    } else if p.tls.is_some() {
        Some("HTTPS runs on epoll: TLS is rustls's stream, driven by tokio")
    } else {
        None
    }
}

/// The engine thread's work: picks the I/O backend (here, as the ring belongs to the thread
/// that made it) and runs the step's loop on `rt`.
fn engine_thread(
    rt: &tokio::runtime::Runtime,
    prepared: Prepared,
    stop: CancellationToken,
    live: Option<LiveStats>,
    rt_priority: bool,
) -> Result<StepRecord, AttackError> {
    let chosen = io::choose(prepared.io, not_plain(&prepared)).map_err(AttackError::Uring)?;
    match chosen {
        // The ring's loop is not `Send` (one thread owns the ring): run by `block_on` itself,
        // which costs nothing here as nothing wakes it through tokio while it runs.
        io::Chosen::Uring(ring) => Ok(rt.block_on(event_loop::run_uring(
            prepared,
            stop,
            live,
            rt_priority,
            ring,
        ))),
        // Spawned rather than run by `block_on` itself: a task woken from its own thread is
        // queued locally, while waking the `block_on` future writes to the reactor's eventfd
        // — a syscall for every answer.
        io::Chosen::Epoll(why) => rt
            .block_on(async {
                tokio::spawn(event_loop::run(prepared, stop, live, rt_priority, why)).await
            })
            .map_err(|e| AttackError::Engine(format!("engine task failed: {e}"))),
    }
}

/// Runs one step and returns the generator's record of it.
///
/// `stop` cancelled → no further request is scheduled, requests in flight are waited for (each
/// up to its timeout) and the record is marked interrupted. `live`, when given, is updated about
/// ten times a second. Errors mean the step could not run at all (bad spec, non-loopback or
/// unreachable target); failed requests are data in the record.
pub async fn run(
    spec: &AttackSpec,
    stop: &CancellationToken,
    live: Option<&LiveStats>,
) -> Result<StepRecord, AttackError> {
    let prepared = prepare(spec)?;
    probe(&prepared.addrs).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stop = stop.clone();
    let live = live.cloned();
    std::thread::Builder::new()
        .name("loadgen-attack".into())
        .spawn(move || {
            let rt_priority = match priority::raise() {
                Ok(()) => true,
                Err(e) => {
                    tracing::info!("engine thread keeps its default scheduling: {e}");
                    false
                }
            };
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| AttackError::Engine(format!("cannot build runtime: {e}")))
                .and_then(|rt| engine_thread(&rt, prepared, stop, live, rt_priority));
            let _ = tx.send(result);
        })
        .map_err(|e| AttackError::Engine(format!("cannot start thread: {e}")))?;
    rx.await
        .map_err(|_| AttackError::Engine("engine thread panicked".into()))?
}
