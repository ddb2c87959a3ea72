//! The TLS configuration of the main listener (`--tls-cert`, `--tls-key`, `--http2`): the PEM
//! certificate chain and key read once at startup, checked against each other, and turned into
//! a rustls server configuration on the ring provider, with session resumption and the ALPN
//! protocols that let a client pick HTTP/2. Everything that can be wrong with the files is found
//! here, before anything is bound, and reported as one line naming the flag and the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN identifier of HTTP/2 over TLS; the one the connection task looks for.
pub const ALPN_H2: &[u8] = b"h2";
/// The ALPN identifier of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Why the TLS files cannot be used (a startup error: exit 2). Each message names the flag and
/// the file, so the operator knows which of the two to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {flag} {}: {source}", path.display())]
    Unreadable {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{flag} {} is not valid PEM: {source}", path.display())]
    NotPem {
        flag: &'static str,
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("--tls-cert {} holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", path.display())]
    NoCertificate { path: PathBuf },
    #[error("--tls-cert {} does not hold a usable certificate: {source}", path.display())]
    BadCertificate {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("--tls-key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("--tls-key {} is not a usable private key: {source}", path.display())]
    BadKey {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error(
        "--tls-key {} does not match the certificate in --tls-cert {}",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// The ring provider, named explicitly: the workspace builds rustls with ring only, and relying
/// on a process-wide default would panic the day a dependency brings a second provider.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    // Read here rather than through `from_pem_file`, so a missing file and a file that is not
    // PEM get different messages.
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

/// The certificate chain in `path`, leaf first.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read("--tls-cert", path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::NotPem {
            flag: "--tls-cert",
            path: path.to_path_buf(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

/// The first private key in `path`, checked to be one the provider can sign with.
fn private_key(path: &Path, provider: &CryptoProvider) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("--tls-key", path)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: path.to_path_buf(),
        },
        source => TlsError::NotPem {
            flag: "--tls-key",
            path: path.to_path_buf(),
            source,
        },
    })?;
    // Loaded once here only to tell a bad key from a bad certificate: `with_single_cert`
    // reports both through the same error type.
    provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|source| TlsError::BadKey {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(key)
}

/// The server configuration for `--tls-cert`/`--tls-key`. ALPN offers `h2` before `http/1.1`
/// only with `http2`; a client offering neither still gets HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path, http2: bool) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let chain = certificates(cert)?;
    let key_der = private_key(key, &provider)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|source| match source {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                TlsError::Mismatch {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                }
            }
            // The key loaded above, so what is left to fail is the certificate.
            source => TlsError::BadCertificate {
                path: cert.to_path_buf(),
                source,
            },
        })?;
    // Resumption as clients of a load test expect it: the default stateful session cache
    // (TLS 1.2 session ids) plus stateless TLS 1.3 tickets, so a reconnecting client skips the
    // full handshake — load campaigns count resumed handshakes, and a replica's CPU with TLS is
    // only comparable when resumption works as in production.
    config.ticketer = rustls::crypto::ring::Ticketer::new().map_err(TlsError::Setup)?;
    config.alpn_protocols = if http2 {
        vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()]
    } else {
        vec![ALPN_HTTP1.to_vec()]
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_missing_or_not_pem_name_their_flag() {
        let dir = std::env::temp_dir().join(format!("polymetrie-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let missing = dir.join("missing.pem");

        let e = server_config(&missing, &junk, false)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read --tls-cert "), "{e}");
        let e = server_config(&junk, &junk, false).unwrap_err().to_string();
        assert!(
            e.starts_with("--tls-cert ") && e.contains("no PEM certificate"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
