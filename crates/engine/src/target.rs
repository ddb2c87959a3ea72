//! Target URLs: the one parser of a base URL (`http://host:port` or `https://host:port`) and the one rule on where load
//! may go. Load goes only to loopback (127.0.0.0/8, ::1, `localhost`) unless the caller passes
//! [`Reach::Remote`], which only an explicit opt-in (a scenario's `allow_remote = true` or
//! `LOADGEN_ALLOW_REMOTE=1`, set by the in-cluster Job) produces. The plan checks a scenario's URL
//! with [`BaseUrl::parse`] and [`BaseUrl::check_reach`] (no DNS, at validation time); the
//! attack resolves it with [`resolve`] and checks every resolved address again.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Environment variable that allows a non-loopback target (the in-cluster Job sets it).
pub const ALLOW_REMOTE_ENV: &str = "LOADGEN_ALLOW_REMOTE";

/// Where load may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reach {
    /// Loopback addresses only (the default everywhere).
    #[default]
    Loopback,
    /// Any address: explicitly allowed by the scenario or [`ALLOW_REMOTE_ENV`].
    Remote,
}

impl Reach {
    /// `Remote` when `allowed` (a scenario's `allow_remote`) or [`ALLOW_REMOTE_ENV`] is `1`.
    pub fn from_opt_in(allowed: bool) -> Reach {
        let env = std::env::var(ALLOW_REMOTE_ENV).is_ok_and(|v| v == "1");
        if allowed || env {
            Reach::Remote
        } else {
            Reach::Loopback
        }
    }
}

/// Why a URL is not an acceptable target.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UrlError {
    /// The text is not an `http(s)://host[:port]` base URL; the message says what was wrong.
    #[error("{0}")]
    Malformed(String),
    /// A well-formed URL whose host is not loopback, while only loopback is allowed.
    #[error(
        "expected a loopback URL (127.0.0.0/8, ::1 or localhost: load goes only to this \
         machine), got host \"{0}\"; set allow_remote = true in [target] or \
         LOADGEN_ALLOW_REMOTE=1 to load a remote service on purpose"
    )]
    NotLoopback(String),
    /// The host did not resolve.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, String),
}

/// A checked base URL: `http://` or `https://` + authority, no user info, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https`: requests go over TLS.
    pub tls: bool,
    /// `host[:port]` as written (IPv6 in brackets), used as the `Host` header.
    pub authority: String,
    /// The host without brackets.
    pub host: String,
    pub port: u16,
}

impl BaseUrl {
    /// Parses `http://host[:port][/]` or `https://…` (port 80 or 443 by default). User info, a
    /// path or a bad port are errors.
    pub fn parse(url: &str) -> Result<BaseUrl, UrlError> {
        let bad = |m: String| Err(UrlError::Malformed(m));
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return bad(format!(
                "expected an http:// or https:// URL such as \"http://127.0.0.1:8080\", got \"{url}\""
            ));
        };
        let authority = rest.split('/').next().unwrap_or("");
        if authority.contains('@') {
            return bad(format!("expected a URL without user info, got \"{url}\""));
        }
        let path = &rest[authority.len()..];
        if !(path.is_empty() || path == "/") {
            return bad(format!(
                "expected a base URL without a path (the path goes in [request].path), got \"{url}\""
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((h, after)) = v6.split_once(']') else {
                return bad(format!("expected a closing ']' in \"{url}\""));
            };
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return bad(format!("expected a host in \"{url}\""));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(p) => p,
                Err(_) => return bad(format!("expected a port number in \"{url}\", got \"{p}\"")),
            },
        };
        Ok(BaseUrl {
            tls,
            authority: authority.to_string(),
            host: host.to_string(),
            port,
        })
    }

    /// The normalised base URL, `http://authority` or `https://authority`.
    pub fn as_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.authority)
    }

    /// Whether the host is lexically loopback (`localhost` or a loopback literal); no DNS.
    pub fn is_loopback_literal(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }

    /// Refuses a host that is not lexically loopback unless `reach` is [`Reach::Remote`].
    pub fn check_reach(&self, reach: Reach) -> Result<(), UrlError> {
        if reach == Reach::Loopback && !self.is_loopback_literal() {
            return Err(UrlError::NotLoopback(self.host.clone()));
        }
        Ok(())
    }
}

/// Where requests go: the resolved address and the `Host` header value.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
}

/// Resolves a base URL to one socket address. Under [`Reach::Loopback`] every address the name
/// resolves to must be loopback (a name that also resolves elsewhere is refused).
pub fn resolve(base: &BaseUrl, reach: Reach) -> Result<Target, UrlError> {
    let addrs: Vec<SocketAddr> = match base.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, base.port)],
        Err(_) => (base.host.as_str(), base.port)
            .to_socket_addrs()
            .map_err(|e| UrlError::Resolve(base.host.clone(), e.to_string()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(UrlError::Resolve(base.host.clone(), "no address".into()));
    }
    if reach == Reach::Loopback && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(UrlError::NotLoopback(base.host.clone()));
    }
    // Prefer IPv4 for `localhost`: the usual test servers bind 127.0.0.1.
    let addr = addrs
        .iter()
        .find(|a| a.is_ipv4())
        .copied()
        .unwrap_or(addrs[0]);
    Ok(Target {
        addr,
        host: base.authority.clone(),
    })
}

/// Splits a full URL given on the command line (`http://127.0.0.1:8080/api/clicks?x=1`) into
/// the base URL and the path-and-query (`/` when absent).
pub fn split_url(url: &str) -> Result<(BaseUrl, String), UrlError> {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let (base, path) = match url[after_scheme..].find(['/', '?']) {
        Some(i) => url.split_at(after_scheme + i),
        None => (url, ""),
    };
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((BaseUrl::parse(base)?, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls_and_refuses_what_is_not_one() {
        let b = BaseUrl::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("127.0.0.1", 8080));
        assert_eq!(b.as_url(), "http://127.0.0.1:8080");
        let v6 = BaseUrl::parse("http://[::1]:9").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.authority.as_str()),
            ("::1", 9, "[::1]:9")
        );
        assert_eq!(BaseUrl::parse("http://localhost").unwrap().port, 80);
        let tls = BaseUrl::parse("https://localhost/").unwrap();
        assert_eq!(
            (tls.tls, tls.port, tls.as_url().as_str()),
            (true, 443, "https://localhost")
        );
        assert_eq!(BaseUrl::parse("https://127.0.0.1:8443").unwrap().port, 8443);
        for bad in [
            "ftp://127.0.0.1:1",
            "127.0.0.1:1",
            "http://u@127.0.0.1:1",
            "http://127.0.0.1:1/api",
            "http://127.0.0.1:x",
            "http://:80",
        ] {
            assert!(
                matches!(BaseUrl::parse(bad), Err(UrlError::Malformed(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn remote_hosts_need_the_opt_in() {
        let remote = BaseUrl::parse("http://10.1.2.3:80").unwrap();
        assert!(matches!(
            remote.check_reach(Reach::Loopback),
            Err(UrlError::NotLoopback(_))
        ));
        assert!(remote.check_reach(Reach::Remote).is_ok());
        let lo = BaseUrl::parse("http://127.0.0.2:80").unwrap();
        assert!(lo.check_reach(Reach::Loopback).is_ok());
        // Resolution under the opt-in never sends anything: it only yields an address.
        assert_eq!(
            resolve(&remote, Reach::Remote).unwrap().addr,
            "10.1.2.3:80".parse().unwrap()
        );
        assert!(resolve(&remote, Reach::Loopback).is_err());
    }

    #[test]
    fn splits_a_command_line_url() {
        let (b, p) = split_url("http://127.0.0.1:8080/api/clicks?x=1").unwrap();
        assert_eq!(
            (b.as_url().as_str(), p.as_str()),
            ("http://127.0.0.1:8080", "/api/clicks?x=1")
        );
        let (_, p) = split_url("http://127.0.0.1:8080").unwrap();
        assert_eq!(p, "/");
        let (_, p) = split_url("http://127.0.0.1:8080?q").unwrap();
        assert_eq!(p, "/?q");
    }
}
