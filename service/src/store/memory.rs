//! The embedded store: one mutex-guarded map per process. A click is applied under the lock
//! before the handler answers, so a 2xx is exactly one increment.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{top_urls, SiteStats, UrlCount};

#[derive(Debug, Default)]
struct SiteCounts {
    clicks: u64,
    urls: HashMap<String, u64>,
}

/// Sites and their counts, in process memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    sites: Mutex<HashMap<String, SiteCounts>>,
}

impl MemoryStore {
    pub fn new(sites: &[String]) -> Self {
        let store = Self::default();
        for s in sites {
            store.register_site(s);
        }
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SiteCounts>> {
        // A panic while holding the lock cannot leave a half-applied increment behind.
        self.sites.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn register_site(&self, site: &str) -> bool {
        let mut sites = self.lock();
        if sites.contains_key(site) {
            return false;
        }
        sites.insert(site.to_string(), SiteCounts::default());
        true
    }

    pub fn list_sites(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().keys().cloned().collect();
        v.sort();
        v
    }

    pub fn site_exists(&self, site: &str) -> bool {
        self.lock().contains_key(site)
    }

    /// Counts a click; an unknown site is ignored (the handler checked it first).
    pub fn record_click(&self, site: &str, url: &str) {
        let mut sites = self.lock();
        if let Some(counts) = sites.get_mut(site) {
            counts.clicks += 1;
            match counts.urls.get_mut(url) {
                Some(n) => *n += 1,
                None => {
                    counts.urls.insert(url.to_string(), 1);
                }
            }
        }
    }

    pub fn stats(&self, site: &str, top: usize) -> Option<SiteStats> {
        let sites = self.lock();
        let counts = sites.get(site)?;
        let urls = counts
            .urls
            .iter()
            .map(|(url, &clicks)| UrlCount {
                url: url.clone(),
                clicks,
            })
            .collect();
        Some(SiteStats {
            site: site.to_string(),
            clicks: counts.clicks,
            urls: top_urls(urls, top),
        })
    }
}
