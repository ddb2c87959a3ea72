//! The per-site URL cap (`--url-label-cap`): which URLs of a site get an entry of their own,
//! in the store and in the metrics labels alike, and which are folded into `__other__`. One
//! rule, applied by the memory store and the metrics here and mirrored by the Redis store's
//! Lua script (which takes the cap and the overflow name from [`UrlCap`]), so a client sending
//! ever new URLs cannot grow either without bound.

/// The overflow entry once a site has `cap` distinct URLs.
pub const OTHER_URL: &str = "__other__";

/// At most `per_site` distinct URLs per site, the rest under [`OTHER_URL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UrlCap {
    pub per_site: usize,
}

impl UrlCap {
    pub fn new(per_site: usize) -> Self {
        Self { per_site }
    }

    /// Where a click on `url` is counted. `known`: `url` already has its own entry;
    /// `distinct`: how many URLs have their own entry ([`OTHER_URL`] not included). A known
    /// URL keeps counting; a new one gets an entry while there is room; a client sending
    /// `__other__` itself lands in the overflow entry and takes no room.
    pub fn entry(&self, url: &str, known: bool, distinct: usize) -> UrlEntry {
        if url != OTHER_URL && (known || distinct < self.per_site) {
            UrlEntry::Own
        } else {
            UrlEntry::Other
        }
    }
}

/// Where one click on a URL was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlEntry {
    /// Under the URL itself.
    Own,
    /// Under [`OTHER_URL`].
    Other,
}

impl UrlEntry {
    /// The entry's name for a click on `url`.
    pub fn name(self, url: &str) -> &str {
        match self {
            UrlEntry::Own => url,
            UrlEntry::Other => OTHER_URL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_urls_keep_counting_new_ones_fold_once_the_cap_is_reached() {
        let cap = UrlCap::new(2);
        assert_eq!(cap.entry("/a", false, 0), UrlEntry::Own);
        assert_eq!(cap.entry("/b", false, 1), UrlEntry::Own);
        assert_eq!(cap.entry("/c", false, 2), UrlEntry::Other);
        assert_eq!(cap.entry("/a", true, 2), UrlEntry::Own);
        assert_eq!(cap.entry(OTHER_URL, false, 0), UrlEntry::Other);
        assert_eq!(UrlCap::new(0).entry("/a", false, 0), UrlEntry::Other);
        assert_eq!(UrlEntry::Own.name("/a"), "/a");
        assert_eq!(UrlEntry::Other.name("/a"), OTHER_URL);
    }
}
