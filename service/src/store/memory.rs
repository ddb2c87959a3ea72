//! The embedded store: one mutex-guarded map per process. A click is applied under the lock
//! before the handler answers, so a 2xx is exactly one increment; a site keeps at most
//! `--url-label-cap` URLs of its own, the rest under `__other__`.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{top_urls, SiteStats, UrlCount};
use crate::url_cap::{UrlCap, UrlEntry, OTHER_URL};

#[derive(Debug, Default)]
struct SiteCounts {
    clicks: u64,
    urls: HashMap<String, u64>,
}

/// Sites and their counts, in process memory.
#[derive(Debug)]
pub struct MemoryStore {
    sites: Mutex<HashMap<String, SiteCounts>>,
    url_cap: UrlCap,
}

impl MemoryStore {
    pub fn new(sites: &[String], url_cap: UrlCap) -> Self {
        let store = Self {
            sites: Mutex::new(HashMap::new()),
            url_cap,
        };
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

    /// Counts a click in the site's total and under its URL's entry, both under one lock
    /// (so concurrent clicks cannot take the cap's last place twice); an unknown site is
    /// ignored (the handler checked it first).
    pub fn record_click(&self, site: &str, url: &str) -> UrlEntry {
        let mut sites = self.lock();
        let Some(counts) = sites.get_mut(site) else {
            return UrlEntry::Other;
        };
        counts.clicks += 1;
        let known = counts.urls.contains_key(url);
        let distinct = counts.urls.len() - usize::from(counts.urls.contains_key(OTHER_URL));
        let entry = self.url_cap.entry(url, known, distinct);
        let name = entry.name(url);
        match counts.urls.get_mut(name) {
            Some(n) => *n += 1,
            None => {
                counts.urls.insert(name.to_string(), 1);
            }
        }
        entry
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_past_the_cap_fold_into_other_and_every_click_counts_once_in_the_total() {
        let store = MemoryStore::new(&["s".to_string()], UrlCap::new(2));
        let entries: Vec<UrlEntry> = ["/a", "/b", "/c", OTHER_URL, "/a", "/d"]
            .iter()
            .map(|u| store.record_click("s", u))
            .collect();
        use UrlEntry::{Other, Own};
        assert_eq!(entries, [Own, Own, Other, Other, Own, Other]);
        let stats = store.stats("s", 10).unwrap();
        assert_eq!(stats.clicks, 6);
        let urls: Vec<(&str, u64)> = stats
            .urls
            .iter()
            .map(|u| (u.url.as_str(), u.clicks))
            .collect();
        assert_eq!(urls, [(OTHER_URL, 3), ("/a", 2), ("/b", 1)]);
    }
}
