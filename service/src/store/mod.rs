//! The click store: where member sites and their click counts live. Two backends behind one
//! enum — the embedded in-memory maps and Redis (shared by replicas) — with one rule: a call
//! that returns `Ok` has durably applied its write exactly once; no write is ever retried.
//! Both cap the distinct URLs kept per site with the same [`UrlCap`].

mod memory;
mod redis;

use std::time::Duration;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;

use serde::Serialize;

use crate::config::StoreUrl;
use crate::url_cap::{UrlCap, UrlEntry};

/// Why a store call did not happen (the request becomes a 503).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store did not answer within {0:?}")]
    Timeout(Duration),
}

/// One URL and its click count, as listed in site stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UrlCount {
    pub url: String,
    pub clicks: u64,
}

/// A site's totals as the store sees them (all replicas together with Redis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SiteStats {
    pub site: String,
    pub clicks: u64,
    pub urls: Vec<UrlCount>,
}

/// The configured backend. Redis futures are boxed so the memory path's request futures stay
/// small (hyper moves them per request).
#[derive(Debug)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    /// Builds the backend; Redis connects lazily, so the service starts (not ready) while
    /// Redis is down and becomes ready by itself when it comes up.
    pub fn open(
        url: &StoreUrl,
        sites: &[String],
        timeout: Duration,
        url_cap: UrlCap,
    ) -> Result<Self, StoreError> {
        Ok(match url {
            StoreUrl::Memory => Store::Memory(MemoryStore::new(sites, url_cap)),
            StoreUrl::Redis(u) => Store::Redis(RedisStore::new(u, sites, timeout, url_cap)?),
        })
    }

    /// Registers a site; `Ok(true)` when it was new.
    pub async fn register_site(&self, site: &str) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.register_site(site)),
            Store::Redis(r) => Box::pin(r.register_site(site)).await,
        }
    }

    /// Every registered site, sorted.
    pub async fn list_sites(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.list_sites()),
            Store::Redis(r) => Box::pin(r.list_sites()).await,
        }
    }

    pub async fn site_exists(&self, site: &str) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.site_exists(site)),
            Store::Redis(r) => Box::pin(r.site_exists(site)).await,
        }
    }

    /// Whether `site` is registered, asked of the store itself past any cache: with Redis one
    /// `SISMEMBER` round trip every time (the work `--regression store-roundtrips:N` adds).
    pub async fn lookup_site(&self, site: &str) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.site_exists(site)),
            Store::Redis(r) => Box::pin(r.lookup_site(site)).await,
        }
    }

    /// Counts one click on a registered site: once in the site's total, and under the URL's
    /// own entry or `__other__` (the answer says which). `Ok` only once the write is applied.
    pub async fn record_click(&self, site: &str, url: &str) -> Result<UrlEntry, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.record_click(site, url)),
            Store::Redis(r) => Box::pin(r.record_click(site, url)).await,
        }
    }

    /// The site's totals and its `top` most clicked URLs; `None` for an unknown site.
    pub async fn stats(&self, site: &str, top: usize) -> Result<Option<SiteStats>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.stats(site, top)),
            Store::Redis(r) => Box::pin(r.stats(site, top)).await,
        }
    }

    /// Whether the store can take writes now.
    pub async fn ready(&self) -> bool {
        match self {
            Store::Memory(_) => true,
            Store::Redis(r) => Box::pin(r.ping()).await.is_ok(),
        }
    }
}

/// Sorts by clicks descending, then URL, and keeps the first `top`.
fn top_urls(mut urls: Vec<UrlCount>, top: usize) -> Vec<UrlCount> {
    urls.sort_by(|a, b| b.clicks.cmp(&a.clicks).then_with(|| a.url.cmp(&b.url)));
    urls.truncate(top);
    urls
}
