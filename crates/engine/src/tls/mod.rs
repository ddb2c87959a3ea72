//! TLS for the engine's HTTP/1.1 client: the one place that knows rustls. [`TlsSpec`] is what a
//! step asks for (the roots to trust, `insecure`, a client certificate, session resumption);
//! [`TlsSpec::client`] checks it once, before the step, into a [`TlsClient`] whose
//! [`TlsClient::handshake`] turns a connected socket into a TLS stream, or a [`TlsFailure`]
//! that the request is counted as.
//!
//! Why tokio-rustls over the engine's own socket: the client already reads and writes a tokio
//! stream with `AsyncRead`/`AsyncWrite` (see [`super::stream`]); a `TlsStream` is one more such
//! stream, driven by the same request future, so the event loop, the pool and the deadlines are
//! untouched and a plain connection pays nothing for TLS existing.
//!
//! One crypto provider for the whole binary: ring, picked explicitly here
//! (`builder_with_provider`) rather than through rustls's process default, which panics when a
//! second provider (aws-lc-rs) is compiled in (ARCHITECTURE.md, "Dependencies worth knowing").

mod failure;
mod insecure;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub use failure::TlsFailure;

/// The ALPN protocol offered over HTTP/1.1.
const ALPN_HTTP1: &[u8] = b"http/1.1";
/// The ALPN protocol offered with `--http2` (the server must pick it).
const ALPN_H2: &[u8] = b"h2";

/// What a step over HTTPS asks of TLS. The default: the system's roots, certificates verified,
/// no client certificate, sessions resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSpec {
    /// Trust only the CA certificates (PEM) in this file instead of the system's roots.
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate at all (recorded in the result).
    pub insecure: bool,
    /// Client certificate chain (PEM) for mTLS; needs `key`.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// Resume sessions from rustls's in-memory cache (tickets or session ids).
    pub resume: bool,
}

impl Default for TlsSpec {
    fn default() -> Self {
        TlsSpec {
            cacert: None,
            insecure: false,
            cert: None,
            key: None,
            resume: true,
        }
    }
}

/// Why TLS settings cannot be used. Each names the setting it is about ([`TlsError::setting`]),
/// so a scenario's error points at that key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {0}: {1}")]
    CaRead(PathBuf, String),
    #[error("CA file {0} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)")]
    CaEmpty(PathBuf),
    #[error("CA file {0}: a certificate does not parse: {1}")]
    CaInvalid(PathBuf, String),
    #[error("cannot read client certificate {0}: {1}")]
    CertRead(PathBuf, String),
    #[error("client certificate file {0} holds no PEM certificate")]
    CertEmpty(PathBuf),
    #[error("cannot read client key {0}: {1}")]
    KeyRead(PathBuf, String),
    #[error("a client key needs its certificate (cert) too")]
    KeyWithoutCert,
    #[error("a client certificate needs its private key (key) too")]
    CertWithoutKey,
    #[error("client certificate {0} and its key cannot be used: {1}")]
    ClientAuth(PathBuf, String),
    #[error("insecure skips verifying the server: a CA file would never be read (give one or the other)")]
    InsecureWithCa,
    #[error(
        "no CA certificate in the system store: give a CA file (--cacert / cacert), or --insecure"
    )]
    NoSystemRoots,
    #[error(
        "TLS settings (cacert, insecure, cert, key, tls_resume) apply only to an https:// URL"
    )]
    NotHttps,
    #[error("the url's host {0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

impl TlsError {
    /// The setting this error is about: `cacert`, `insecure`, `cert`, `key` or `url`.
    pub fn setting(&self) -> &'static str {
        match self {
            TlsError::CaRead(..) | TlsError::CaEmpty(_) | TlsError::CaInvalid(..) => "cacert",
            TlsError::NoSystemRoots => "cacert",
            TlsError::CertRead(..) | TlsError::CertEmpty(_) | TlsError::CertWithoutKey => "cert",
            TlsError::ClientAuth(..) => "cert",
            TlsError::KeyRead(..) | TlsError::KeyWithoutCert => "key",
            TlsError::InsecureWithCa => "insecure",
            TlsError::NotHttps | TlsError::ServerName(_) | TlsError::Config(_) => "url",
        }
    }
}

/// The ring provider, the binary's only one.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl TlsSpec {
    /// True when nothing differs from the default (what a plain-HTTP step must have).
    pub fn is_default(&self) -> bool {
        *self == TlsSpec::default()
    }

    /// Where the trusted roots come from, as the result records it.
    pub fn roots(&self) -> String {
        match (&self.cacert, self.insecure) {
            (_, true) => "none (insecure)".into(),
            (Some(p), false) => p.display().to_string(),
            (None, false) => "system".into(),
        }
    }

    /// The rustls configuration of an HTTP/1.1 step: every file read and checked now, so a bad
    /// one is bad input before the step rather than a failure per request.
    pub fn config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        self.config_for(false)
    }

    /// [`TlsSpec::config`], offering `h2` by ALPN instead of `http/1.1` when `http2`.
    fn config_for(&self, http2: bool) -> Result<Arc<ClientConfig>, TlsError> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = if self.insecure {
            if self.cacert.is_some() {
                return Err(TlsError::InsecureWithCa);
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(insecure::NoVerifier::new(provider)))
        } else {
            builder.with_root_certificates(self.root_store()?)
        };
        let mut config = match (&self.cert, &self.key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => return Err(TlsError::CertWithoutKey),
            (None, Some(_)) => return Err(TlsError::KeyWithoutCert),
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(read_chain(cert)?, read_key(key)?)
                .map_err(|e| TlsError::ClientAuth(cert.clone(), e.to_string()))?,
        };
        config.alpn_protocols = vec![if http2 { ALPN_H2 } else { ALPN_HTTP1 }.to_vec()];
        // The default is rustls's in-memory cache (256 servers, TLS 1.3 tickets and TLS 1.2
        // ids or tickets), shared by every connection of the step since they share the config.
        if !self.resume {
            config.resumption = Resumption::disabled();
        }
        Ok(Arc::new(config))
    }

    fn root_store(&self) -> Result<RootCertStore, TlsError> {
        let mut roots = RootCertStore::empty();
        match &self.cacert {
            Some(path) => {
                for cert in read_certs(path, TlsError::CaRead, TlsError::CaInvalid)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::CaInvalid(path.clone(), e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(TlsError::CaEmpty(path.clone()));
                }
            }
            None => {
                // Certificates of the store that do not parse are skipped, as a browser does;
                // an empty store is an error, or every handshake would fail the same way.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(TlsError::NoSystemRoots);
                }
            }
        }
        Ok(roots)
    }

    /// The client of a step whose URL names `host` (the server name sent as SNI and verified
    /// against the certificate; an IP address is verified against its IP SANs, without SNI);
    /// `http2` offers `h2` by ALPN.
    pub fn client(&self, host: &str, http2: bool) -> Result<TlsClient, TlsError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| TlsError::ServerName(host.to_string()))?;
        Ok(TlsClient {
            connector: TlsConnector::from(self.config_for(http2)?),
            name,
            view: TlsView {
                insecure: self.insecure,
                resumption: self.resume,
                client_cert: self.cert.is_some(),
                roots: self.roots(),
            },
        })
    }
}

/// The settings a result records beside the handshake counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsView {
    pub insecure: bool,
    pub resumption: bool,
    pub client_cert: bool,
    pub roots: String,
}

/// A checked TLS setup: one per step, shared by all its connections (and so is the session
/// cache inside its config).
pub struct TlsClient {
    connector: TlsConnector,
    name: ServerName<'static>,
    view: TlsView,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("name", &self.name)
            .field("view", &self.view)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// The settings, as the result records them.
    pub fn view(&self) -> &TlsView {
        &self.view
    }

    /// The handshake on a connected socket: the stream and whether it resumed a session (the
    /// protocol ALPN picked is on the stream).
    /// Unbounded: the caller bounds it with the connect's deadline.
    pub async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, bool), TlsFailure> {
        let stream = self
            .connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(|e| TlsFailure::of_handshake_error(&e))?;
        let resumed = stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
        Ok((stream, resumed))
    }
}

/// Certificates of a PEM file, in order; `read` makes the error of a file that cannot be read,
/// `invalid` that of a PEM section that does not decode.
fn read_certs(
    path: &Path,
    read: fn(PathBuf, String) -> TlsError,
    invalid: fn(PathBuf, String) -> TlsError,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| read(path.to_path_buf(), e.to_string()))?;
    CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(path.to_path_buf(), e.to_string()))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = read_certs(path, TlsError::CertRead, TlsError::CertRead)?;
    if chain.is_empty() {
        return Err(TlsError::CertEmpty(path.to_path_buf()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes =
        std::fs::read(path).map_err(|e| TlsError::KeyRead(path.to_path_buf(), e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| TlsError::KeyRead(path.to_path_buf(), e.to_string()))
}
