//! The HTTP application: routes, request validation and the click path. Every request is
//! answered here (errors included) and counted in the metrics by route and status. Bad input
//! is refused before a click takes an in-flight slot, so it is answered at once even while
//! good clicks queue.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Body;
use hyper::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;

use crate::admin_token::{Denied, Registration};
use crate::admission::Admission;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::regression::Regression;
use crate::store::{Store, StoreError};
use crate::url_cap::UrlEntry;
use crate::validation;

/// When the connection carrying a request was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before SIGTERM: everything is served.
    Serving,
    /// During the drain (admin listener only): probes and reads are served, new work (clicks,
    /// registrations) gets 503 so it goes to another replica instead of prolonging the drain.
    Draining,
}

/// Shared state behind every connection.
#[derive(Debug)]
pub struct App {
    pub store: Store,
    pub metrics: Metrics,
    admission: Admission,
    cost: Duration,
    body_limit: usize,
    body_timeout: Duration,
    top_urls: usize,
    registration: Registration,
    /// Extra work per click (`--regression`), done inside the click's in-flight slot.
    regression: Regression,
    /// `--cost 0` with the memory store and no regression: a click never waits, so it skips
    /// admission.
    instant_clicks: bool,
    draining: AtomicBool,
}

#[derive(Deserialize)]
struct ClickBody<'a> {
    #[serde(borrow)]
    site: Cow<'a, str>,
    #[serde(borrow)]
    url: Cow<'a, str>,
}

#[derive(Deserialize)]
struct SiteBody<'a> {
    #[serde(borrow)]
    site: Cow<'a, str>,
}

type Resp = Response<Full<Bytes>>;

fn json(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, msg: &str) -> Resp {
    json(status, serde_json::json!({ "error": msg }).to_string())
}

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    r.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    r
}

/// Every 503 says when to come back: shedding, an unavailable store and draining are all
/// expected to pass within about a second (or the request goes to another replica).
fn unavailable(msg: &str) -> Resp {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, msg);
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn draining() -> Resp {
    let mut r = unavailable("draining: this replica is shutting down");
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

fn denied(d: Denied) -> Resp {
    match d {
        Denied::NoCredential => {
            let mut r = error(StatusCode::UNAUTHORIZED, &d.to_string());
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="polymetrie""#),
            );
            r
        }
        Denied::Disabled | Denied::WrongToken => error(StatusCode::FORBIDDEN, &d.to_string()),
    }
}

fn store_unavailable(e: &StoreError) -> Resp {
    tracing::debug!(error = %e, "store call failed");
    unavailable(&e.to_string())
}

/// Why a body could not be read.
enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

impl BodyError {
    fn response(&self) -> Resp {
        match self {
            BodyError::TooLarge => error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
            BodyError::TimedOut => {
                // The client is too slow (or half-sent): answer and close the connection.
                let mut r = error(StatusCode::REQUEST_TIMEOUT, "body not received in time");
                r.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                r
            }
            BodyError::Broken => error(StatusCode::BAD_REQUEST, "unreadable body"),
        }
    }
}

impl App {
    pub fn new(config: &Config, store: Store, registration: Registration) -> Self {
        let instant_clicks = config.cost.is_zero()
            && matches!(store, Store::Memory(_))
            && config.regression.is_none();
        let metrics = Metrics::new(config.url_cap());
        let admission = Admission::new(config.max_inflight, config.queue_timeout, metrics.queued());
        Self {
            store,
            metrics,
            admission,
            cost: config.cost,
            body_limit: config.body_limit,
            body_timeout: config.body_timeout,
            top_urls: config.top_urls,
            registration,
            regression: config.regression,
            instant_clicks,
            draining: AtomicBool::new(false),
        }
    }

    /// From now on /readyz answers 503 so load balancers stop sending new work.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Answers one request and records it in the metrics.
    pub async fn handle<B>(&self, req: Request<B>, phase: Phase) -> Resp
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let start = Instant::now();
        let _in_progress = self.metrics.in_progress();
        let (route, resp) = self.route(req, phase).await;
        self.metrics
            .request(route, resp.status().as_u16(), start.elapsed());
        resp
    }

    async fn route<B>(&self, req: Request<B>, phase: Phase) -> (&'static str, Resp)
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let method = req.method().clone();
        let path = req.uri().path();
        let stats_site = path
            .strip_prefix("/api/sites/")
            .and_then(|rest| rest.strip_suffix("/stats"))
            .filter(|site| !site.is_empty() && !site.contains('/'))
            .map(str::to_string);
        let read = matches!(method, Method::GET | Method::HEAD);
        match path {
            "/api/clicks" => (
                "/api/clicks",
                match method {
                    Method::POST if phase == Phase::Draining => draining(),
                    Method::POST => self.click(req).await,
                    _ => method_not_allowed("POST"),
                },
            ),
            "/api/sites" => (
                "/api/sites",
                match method {
                    Method::POST if phase == Phase::Draining => draining(),
                    Method::POST => self.register_site(req).await,
                    _ if read => self.list_sites().await,
                    _ => method_not_allowed("GET, HEAD, POST"),
                },
            ),
            "/metrics" if read => ("/metrics", self.metrics_text()),
            "/healthz" if read => ("/healthz", json(StatusCode::OK, r#"{"status":"ok"}"#)),
            "/readyz" if read => ("/readyz", self.readyz().await),
            "/metrics" | "/healthz" | "/readyz" => (
                // Only the three fixed paths reach here, so the label set stays bounded.
                match path {
                    "/metrics" => "/metrics",
                    "/healthz" => "/healthz",
                    _ => "/readyz",
                },
                method_not_allowed("GET, HEAD"),
            ),
            _ => match stats_site {
                Some(site) => (
                    "/api/sites/{site}/stats",
                    if read {
                        self.stats(&site).await
                    } else {
                        method_not_allowed("GET, HEAD")
                    },
                ),
                None => ("other", error(StatusCode::NOT_FOUND, "no such route")),
            },
        }
    }

    async fn read_body<B>(&self, req: Request<B>) -> Result<Bytes, BodyError>
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let declared = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.body_limit as u64) {
            return Err(BodyError::TooLarge);
        }
        let limited = Limited::new(req.into_body(), self.body_limit);
        match tokio::time::timeout(self.body_timeout, limited.collect()).await {
            Err(_) => Err(BodyError::TimedOut),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(BodyError::TooLarge)
            }
            Ok(Err(_)) => Err(BodyError::Broken),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }

    async fn click<B>(&self, req: Request<B>) -> Resp
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let body = match self.read_body(req).await {
            Ok(b) => b,
            Err(e) => return e.response(),
        };
        // serde_json rejects invalid UTF-8 inside strings, so that is a 400 too.
        let click: ClickBody = match serde_json::from_slice(&body) {
            Ok(c) => c,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad click: {e}")),
        };
        if click.site.is_empty() {
            return error(StatusCode::BAD_REQUEST, "site must be non-empty");
        }
        if let Err(e) = validation::url(&click.url) {
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
        match self.store.site_exists(&click.site).await {
            Ok(true) => {}
            Ok(false) => return error(StatusCode::NOT_FOUND, "unknown site"),
            Err(e) => return store_unavailable(&e),
        }
        let result = if self.instant_clicks {
            // Nothing to wait for: the click is applied synchronously, so a slot would be held
            // for no time and could never make anyone queue.
            self.process_click(&body, &click.site, &click.url).await
        } else {
            let Some(_permit) = self.admission.admit().await else {
                self.metrics.shed();
                return unavailable("overloaded: shed");
            };
            let _inflight = self.metrics.inflight();
            self.process_click(&body, &click.site, &click.url).await
        };
        match result {
            Ok(entry) => {
                self.metrics.click(&click.site, entry.name(&click.url));
                empty(StatusCode::NO_CONTENT)
            }
            Err(e) => store_unavailable(&e),
        }
    }

    /// The emulated work, any regression's extra work, then the write; the caller holds an
    /// in-flight slot, so extra work takes capacity as real work would.
    async fn process_click(
        &self,
        body: &[u8],
        site: &str,
        url: &str,
    ) -> Result<UrlEntry, StoreError> {
        self.regress(body, site).await?;
        if !self.cost.is_zero() {
            let cost = self.cost;
            // Burnt on a blocking thread so the accept loop and other connections keep
            // running; concurrency is bounded by the in-flight slots, like gunicorn workers.
            if tokio::task::spawn_blocking(move || crate::cost::burn(cost))
                .await
                .is_err()
            {
                return Err(StoreError::Unavailable("cost task failed".into()));
            }
        }
        self.store.record_click(site, url).await
    }

    /// The extra work `--regression` asks of a click whose `body` was already parsed and
    /// validated once, counted as it is done.
    async fn regress(&self, body: &[u8], site: &str) -> Result<(), StoreError> {
        match self.regression {
            Regression::None => {}
            Regression::JsonRevalidate(n) => {
                for _ in 0..n {
                    // What a handler that re-reads its input pays: the parse and the checks,
                    // kept from being optimised away by black_box.
                    let valid = serde_json::from_slice::<ClickBody>(body)
                        .is_ok_and(|c| !c.site.is_empty() && validation::url(&c.url).is_ok());
                    std::hint::black_box(valid);
                }
            }
            Regression::StoreRoundtrips(n) => {
                for _ in 0..n {
                    std::hint::black_box(self.store.lookup_site(site).await?);
                }
            }
        }
        self.metrics
            .regression_work(u64::from(self.regression.units()));
        Ok(())
    }

    async fn register_site<B>(&self, req: Request<B>) -> Resp
    where
        B: Body<Data = Bytes>,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        // Before the body is read: an anonymous client gets nothing out of sending one.
        if let Err(d) = self.registration.authorize(req.headers()) {
            return denied(d);
        }
        let body = match self.read_body(req).await {
            Ok(b) => b,
            Err(e) => return e.response(),
        };
        let site: SiteBody = match serde_json::from_slice(&body) {
            Ok(s) => s,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad site: {e}")),
        };
        if let Err(e) = validation::site(&site.site) {
            return error(StatusCode::BAD_REQUEST, &e.to_string());
        }
        match self.store.register_site(&site.site).await {
            Ok(created) => {
                self.metrics.site(&site.site);
                let status = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                json(
                    status,
                    serde_json::json!({ "site": site.site, "created": created }).to_string(),
                )
            }
            Err(e) => store_unavailable(&e),
        }
    }

    async fn list_sites(&self) -> Resp {
        match self.store.list_sites().await {
            Ok(sites) => json(
                StatusCode::OK,
                serde_json::json!({ "sites": sites }).to_string(),
            ),
            Err(e) => store_unavailable(&e),
        }
    }

    async fn stats(&self, site: &str) -> Resp {
        match self.store.stats(site, self.top_urls).await {
            Ok(Some(stats)) => json(
                StatusCode::OK,
                serde_json::to_string(&stats).unwrap_or_default(),
            ),
            Ok(None) => error(StatusCode::NOT_FOUND, "unknown site"),
            Err(e) => store_unavailable(&e),
        }
    }

    fn metrics_text(&self) -> Resp {
        let mut r = Response::new(Full::new(Bytes::from(self.metrics.encode())));
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        );
        r
    }

    async fn readyz(&self) -> Resp {
        if self.draining.load(Ordering::Acquire) {
            return unavailable("draining");
        }
        if self.store.ready().await {
            json(StatusCode::OK, r#"{"status":"ready"}"#)
        } else {
            unavailable("store unavailable")
        }
    }
}
