//! Validation of the names clients send: site names (on registration) and click URLs. One
//! place decides what the store may be asked to keep, so that no client-chosen string grows
//! it without a bound on its size.

/// Longest accepted site name (a DNS name is at most 253 bytes).
pub const MAX_SITE_LEN: usize = 253;

/// Longest accepted click URL, in bytes: the de-facto limit browsers and CDNs put on URLs;
/// anything longer is not a page address but an attempt to store payloads.
pub const MAX_URL_LEN: usize = 2048;

/// Why a client-supplied name is refused (the request becomes a 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("site must be 1-253 bytes without whitespace, control characters or '/'")]
    Site,
    #[error("url must be 1-2048 bytes without control characters")]
    Url,
}

/// A site name: 1–253 bytes, no whitespace, control characters or `/` (it is a path segment
/// of the stats route and part of Redis keys).
pub fn site(site: &str) -> Result<(), InvalidName> {
    let ok = !site.is_empty()
        && site.len() <= MAX_SITE_LEN
        && !site
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/');
    ok.then_some(()).ok_or(InvalidName::Site)
}

/// A click URL: 1–2048 bytes, no control characters (C0, DEL, C1: they have no place in a
/// URL and would corrupt logs, metrics text and terminals that display the stats).
/// Percent-encoded bytes (`%00`) are ordinary characters here: nothing decodes them.
pub fn url(url: &str) -> Result<(), InvalidName> {
    let ok = !url.is_empty() && url.len() <= MAX_URL_LEN && !url.chars().any(char::is_control);
    ok.then_some(()).ok_or(InvalidName::Url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_bounded_in_length_and_free_of_control_characters() {
        assert_eq!(url("/a/b?c=d%00#e"), Ok(()));
        assert_eq!(url(&"x".repeat(MAX_URL_LEN)), Ok(()));
        assert_eq!(url(&"x".repeat(MAX_URL_LEN + 1)), Err(InvalidName::Url));
        // Multi-byte characters count in bytes: 1025 × 2 bytes is over the limit.
        assert_eq!(url(&"é".repeat(1025)), Err(InvalidName::Url));
        for bad in ["", "/a\nb", "/a\rb", "/\0", "/\u{7f}", "/\u{85}", "/\t"] {
            assert_eq!(url(bad), Err(InvalidName::Url), "{bad:?}");
        }
    }

    #[test]
    fn site_names_are_dns_sized_single_path_segments() {
        assert_eq!(site("example.com"), Ok(()));
        assert_eq!(site(&"a".repeat(MAX_SITE_LEN)), Ok(()));
        for bad in ["", "a b", "a/b", "a\u{1}", &"a".repeat(MAX_SITE_LEN + 1)] {
            assert_eq!(site(bad), Err(InvalidName::Site), "{bad:?}");
        }
    }
}
