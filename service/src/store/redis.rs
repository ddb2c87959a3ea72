//! The Redis store, shared by every replica pointing at the same server. Keys:
//! `polymetrie:sites` (set of member sites), `polymetrie:site:{site}:clicks` (INCR counter),
//! `polymetrie:site:{site}:urls` (sorted set of URL click counts, at most `--url-label-cap`
//! URLs plus `__other__`). A click is one Lua script (atomic in Redis); the handler answers
//! 2xx only after the script's reply, and never retries a write, so an acknowledged click is
//! counted exactly once. Connection loss is reported as unavailable and the connection
//! manager reconnects in the background.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{top_urls, SiteStats, StoreError, UrlCount};
use crate::url_cap::{UrlCap, UrlEntry};

const SITES_KEY: &str = "polymetrie:sites";

/// One click: the site's total, then the URL's entry under the cap — the rule of
/// [`UrlCap::entry`], in Lua. A script rather than MULTI/EXEC because the cap needs a read
/// (is the URL known, how many are) and the write that depends on it in one atomic step:
/// Redis runs a script without interleaving any other command, so concurrent clicks from
/// every replica cannot both take the cap's last place, and the total and the URL entry are
/// applied together or (on an error before the first write) not at all.
/// KEYS: clicks counter, URL sorted set. ARGV: url, cap, overflow name.
/// Returns 1 when the URL has its own entry, 0 when it was counted under the overflow name.
const CLICK_SCRIPT: &str = r"
redis.call('INCR', KEYS[1])
local url, cap, other = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local own = 1
if url == other then
  own = 0
elseif not redis.call('ZSCORE', KEYS[2], url) then
  local distinct = redis.call('ZCARD', KEYS[2])
  if redis.call('ZSCORE', KEYS[2], other) then distinct = distinct - 1 end
  if distinct >= cap then own = 0 end
end
if own == 0 then url = other end
redis.call('ZINCRBY', KEYS[2], 1, url)
return own
";

fn clicks_key(site: &str) -> String {
    format!("polymetrie:site:{site}:clicks")
}

fn urls_key(site: &str) -> String {
    format!("polymetrie:site:{site}:urls")
}

/// A lazily connected, self-reconnecting Redis client plus a cache of known sites (sites are
/// never removed, so a positive answer can be cached for good).
pub struct RedisStore {
    conn: ConnectionManager,
    timeout: Duration,
    known: RwLock<HashSet<String>>,
    /// The `--sites` list, (re)registered in Redis before the first command and after any
    /// error (a restarted Redis without persistence has forgotten them).
    preregistered: Vec<String>,
    preregistered_synced: AtomicBool,
    url_cap: UrlCap,
    /// Sent as EVALSHA; the `redis` crate loads it and re-sends only on NOSCRIPT (nothing
    /// ran), so this is not a retried write.
    click_script: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisStore {
    pub fn new(
        url: &str,
        sites: &[String],
        timeout: Duration,
        url_cap: UrlCap,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(unavailable)?;
        Ok(Self {
            conn,
            timeout,
            known: RwLock::new(sites.iter().cloned().collect()),
            preregistered: sites.to_vec(),
            preregistered_synced: AtomicBool::new(sites.is_empty()),
            url_cap,
            click_script: redis::Script::new(CLICK_SCRIPT),
        })
    }

    /// Runs one store operation with the bound, first syncing pre-registered sites if needed;
    /// any failure marks them for re-sync.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let result = tokio::time::timeout(self.timeout, async {
            if !self.preregistered_synced.load(Ordering::Acquire) {
                let mut conn = self.conn.clone();
                redis::cmd("SADD")
                    .arg(SITES_KEY)
                    .arg(&self.preregistered)
                    .query_async::<i64>(&mut conn)
                    .await?;
                self.preregistered_synced.store(true, Ordering::Release);
            }
            op(self.conn.clone()).await
        })
        .await;
        let result = match result {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        if result.is_err() && !self.preregistered.is_empty() {
            self.preregistered_synced.store(false, Ordering::Release);
        }
        result
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    pub async fn register_site(&self, site: &str) -> Result<bool, StoreError> {
        let added = self
            .run(|mut c| async move {
                redis::cmd("SADD")
                    .arg(SITES_KEY)
                    .arg(site)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await?;
        self.remember(site);
        Ok(added == 1)
    }

    pub async fn list_sites(&self) -> Result<Vec<String>, StoreError> {
        let mut sites = self
            .run(|mut c| async move {
                redis::cmd("SMEMBERS")
                    .arg(SITES_KEY)
                    .query_async::<Vec<String>>(&mut c)
                    .await
            })
            .await?;
        sites.sort();
        Ok(sites)
    }

    fn remember(&self, site: &str) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(site.to_string());
    }

    pub async fn site_exists(&self, site: &str) -> Result<bool, StoreError> {
        if self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(site)
        {
            return Ok(true);
        }
        let exists = self.lookup_site(site).await?;
        if exists {
            self.remember(site);
        }
        Ok(exists)
    }

    /// Asks Redis whether `site` is registered, past the cache: one `SISMEMBER` round trip.
    pub async fn lookup_site(&self, site: &str) -> Result<bool, StoreError> {
        self.run(|mut c| async move {
            redis::cmd("SISMEMBER")
                .arg(SITES_KEY)
                .arg(site)
                .query_async::<bool>(&mut c)
                .await
        })
        .await
    }

    pub async fn record_click(&self, site: &str, url: &str) -> Result<UrlEntry, StoreError> {
        let (ck, uk) = (clicks_key(site), urls_key(site));
        let own = self
            .run(|mut c| async move {
                self.click_script
                    .key(&ck)
                    .key(&uk)
                    .arg(url)
                    .arg(self.url_cap.per_site)
                    .arg(crate::url_cap::OTHER_URL)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(if own == 1 {
            UrlEntry::Own
        } else {
            UrlEntry::Other
        })
    }

    pub async fn stats(&self, site: &str, top: usize) -> Result<Option<SiteStats>, StoreError> {
        if !self.site_exists(site).await? {
            return Ok(None);
        }
        let (ck, uk) = (clicks_key(site), urls_key(site));
        let stop = top as isize - 1;
        let (clicks, urls): (Option<u64>, Vec<(String, f64)>) = self
            .run(|mut c| async move {
                redis::pipe()
                    .cmd("GET")
                    .arg(&ck)
                    .cmd("ZREVRANGE")
                    .arg(&uk)
                    .arg(0)
                    .arg(stop)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let urls = urls
            .into_iter()
            .map(|(url, score)| UrlCount {
                url,
                clicks: score as u64,
            })
            .collect();
        Ok(Some(SiteStats {
            site: site.to_string(),
            clicks: clicks.unwrap_or(0),
            urls: top_urls(urls, top),
        }))
    }
}
