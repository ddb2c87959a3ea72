//! The admin token that guards site registration over HTTP (`POST /api/sites`): read once at
//! startup from `--admin-token-file`, then compared with a request's `Authorization: Bearer …`
//! in constant time. Without a token file, registration over HTTP is off and `--sites` is the
//! only way to register a site.

use std::path::{Path, PathBuf};

use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why the token file cannot be used (a startup error: exit 2). Messages never contain the
/// token itself.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read the admin token file {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the admin token file {} is empty", path.display())]
    Empty { path: PathBuf },
    #[error(
        "the admin token in {} must be printable ASCII without spaces (it is sent as `Authorization: Bearer TOKEN`)",
        path.display()
    )]
    NotAHeaderValue { path: PathBuf },
}

/// The configured token. Only its SHA-256 digest is kept: comparing two fixed-size digests
/// hides the token's length as well as its bytes (a plain constant-time slice comparison
/// returns early on a length mismatch), and the secret itself never sits in a struct that
/// could end up in a log.
pub struct AdminToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl AdminToken {
    /// Reads the token from `path`; surrounding whitespace (the usual trailing newline) is
    /// not part of it.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenError::Unreadable {
            path: path.to_path_buf(),
            source,
        })?;
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty {
                path: path.to_path_buf(),
            });
        }
        // A token no client could put in a header would make registration silently
        // impossible: refuse it at startup instead.
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(TokenError::NotAHeaderValue {
                path: path.to_path_buf(),
            });
        }
        Ok(Self {
            digest: digest(token.as_bytes()),
        })
    }

    fn matches(&self, presented: &[u8]) -> bool {
        bool::from(self.digest.ct_eq(&digest(presented)))
    }
}

/// Who may register sites over HTTP.
#[derive(Debug)]
pub enum Registration {
    /// No token configured: `POST /api/sites` is refused; `--sites` is the only way.
    Disabled,
    /// Holders of the admin token.
    Token(AdminToken),
}

/// Why a registration request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("site registration over HTTP is disabled: start polymetrie with --admin-token-file FILE (or POLYMETRIE_ADMIN_TOKEN_FILE) to enable it, or pre-register sites with --sites")]
    Disabled,
    #[error("site registration needs `Authorization: Bearer <admin token>`")]
    NoCredential,
    #[error("wrong admin token")]
    WrongToken,
}

impl Registration {
    /// `Disabled` without a file, else the token read from it.
    pub fn load(file: Option<&Path>) -> Result<Self, TokenError> {
        Ok(match file {
            None => Registration::Disabled,
            Some(path) => Registration::Token(AdminToken::from_file(path)?),
        })
    }

    /// Whether a request with these headers may register a site.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<(), Denied> {
        let token = match self {
            Registration::Disabled => return Err(Denied::Disabled),
            Registration::Token(t) => t,
        };
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
            .ok_or(Denied::NoCredential)?;
        if token.matches(presented) {
            Ok(())
        } else {
            Err(Denied::WrongToken)
        }
    }
}

/// The credential of an `Authorization: Bearer <credential>` value (the scheme is
/// case-insensitive, RFC 9110 §11.1); `None` for any other scheme or an empty credential.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    if value.len() <= SCHEME.len() || !value[..SCHEME.len()].eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let credential = value[SCHEME.len()..].trim_ascii();
    (!credential.is_empty()).then_some(credential)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn token_file(content: &str) -> (PathBuf, Result<Registration, TokenError>) {
        // Unit tests run on parallel threads of one process: one file name each.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("polymetrie-token-{}-{n}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        let r = Registration::load(Some(&path));
        let _ = std::fs::remove_file(&path);
        (path, r)
    }

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_str(a).unwrap());
        }
        h
    }

    #[test]
    fn bearer_token_is_checked_and_scheme_is_case_insensitive() {
        let (_, r) = token_file("s3cret-token\n");
        let r = r.unwrap();
        assert_eq!(r.authorize(&headers(Some("Bearer s3cret-token"))), Ok(()));
        assert_eq!(r.authorize(&headers(Some("bearer s3cret-token"))), Ok(()));
        assert_eq!(
            r.authorize(&headers(Some("Bearer s3cret-tokeN"))),
            Err(Denied::WrongToken)
        );
        assert_eq!(
            r.authorize(&headers(Some("Bearer s3cret"))),
            Err(Denied::WrongToken)
        );
        for missing in [
            None,
            Some("Basic czNjcmV0"),
            Some("Bearer "),
            Some("s3cret-token"),
        ] {
            assert_eq!(
                r.authorize(&headers(missing)),
                Err(Denied::NoCredential),
                "{missing:?}"
            );
        }
        assert_eq!(format!("{r:?}"), "Token(AdminToken(<redacted>))");
    }

    #[test]
    fn no_token_file_disables_registration() {
        let r = Registration::load(None).unwrap();
        assert_eq!(
            r.authorize(&headers(Some("Bearer anything"))),
            Err(Denied::Disabled)
        );
    }

    #[test]
    fn empty_unreadable_or_unsendable_token_files_are_refused_without_echoing_them() {
        assert!(matches!(
            token_file(" \n\n").1,
            Err(TokenError::Empty { .. })
        ));
        let (_, r) = token_file("has space-inside");
        let e = r.unwrap_err();
        assert!(matches!(e, TokenError::NotAHeaderValue { .. }));
        assert!(!e.to_string().contains("space-inside"), "{e}");
        let e = Registration::load(Some(Path::new("/nonexistent/polymetrie-token"))).unwrap_err();
        assert!(matches!(e, TokenError::Unreadable { .. }), "{e}");
    }
}
