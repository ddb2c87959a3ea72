//! Why a TLS connection failed, in a small fixed taxonomy that a result counts by
//! [`TlsFailure::name`] (what each means to a person is the report's wording). A TLS failure is
//! an outcome of the request that met it, never an `Err` of the run (ARCHITECTURE.md rule 5).

use std::io;

use rustls::{AlertDescription, CertificateError};

/// What went wrong with TLS on one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsFailure {
    /// The server's chain does not end at a trusted root.
    UnknownCa,
    /// The certificate is not valid for the URL's host.
    NameMismatch,
    /// The certificate (or one of its chain) is expired or not yet valid.
    Expired,
    /// Any other certificate problem (bad signature, encoding, purpose, revoked, …).
    BadCertificate,
    /// The server sent this fatal alert (its TLS code), e.g. a refused client certificate.
    Alert(u8),
    /// The server chose no protocol the client offered by ALPN (or none at all with `--http2`,
    /// which needs `h2`).
    NoAlpn,
    /// The peer closed or reset the connection during the handshake.
    Closed,
    /// The handshake did not finish within the connect's deadline.
    Timeout,
    /// Any other TLS protocol error.
    Protocol,
}

impl TlsFailure {
    /// Classifies a rustls error.
    pub fn of_rustls(e: &rustls::Error) -> TlsFailure {
        match e {
            rustls::Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => TlsFailure::UnknownCa,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => TlsFailure::Expired,
                _ => TlsFailure::BadCertificate,
            },
            // The server's way of saying the same as a missing ALPN answer.
            rustls::Error::AlertReceived(AlertDescription::NoApplicationProtocol) => {
                TlsFailure::NoAlpn
            }
            rustls::Error::AlertReceived(a) => TlsFailure::Alert(u8::from(*a)),
            rustls::Error::NoApplicationProtocol => TlsFailure::NoAlpn,
            _ => TlsFailure::Protocol,
        }
    }

    /// The TLS failure an I/O error carries, if any (tokio-rustls wraps rustls errors in
    /// `io::Error`): for errors on an established connection, where anything else is I/O.
    pub fn of_io(e: &io::Error) -> Option<TlsFailure> {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(TlsFailure::of_rustls)
    }

    /// Classifies an error of the handshake itself, where every error is a TLS failure: a peer
    /// that closes mid-handshake is one too (a server refusing the client does).
    pub fn of_handshake_error(e: &io::Error) -> TlsFailure {
        TlsFailure::of_io(e).unwrap_or(match e.kind() {
            io::ErrorKind::TimedOut => TlsFailure::Timeout,
            _ => TlsFailure::Closed,
        })
    }

    /// The name a result counts it by: `unknown_ca`, `alert_certificate_required`, …
    pub fn name(self) -> String {
        match self {
            TlsFailure::UnknownCa => "unknown_ca".into(),
            TlsFailure::NameMismatch => "name_mismatch".into(),
            TlsFailure::Expired => "expired".into(),
            TlsFailure::BadCertificate => "bad_certificate".into(),
            TlsFailure::Alert(code) => format!(
                "alert_{}",
                snake(&format!("{:?}", AlertDescription::from(code)))
            ),
            TlsFailure::NoAlpn => "no_alpn".into(),
            TlsFailure::Closed => "closed".into(),
            TlsFailure::Timeout => "timeout".into(),
            TlsFailure::Protocol => "protocol".into(),
        }
    }
}

/// `CertificateRequired` → `certificate_required`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_are_named_for_what_a_person_fixes() {
        let cert = |c| rustls::Error::InvalidCertificate(c);
        assert_eq!(
            TlsFailure::of_rustls(&cert(CertificateError::UnknownIssuer)).name(),
            "unknown_ca"
        );
        assert_eq!(
            TlsFailure::of_rustls(&cert(CertificateError::Expired)).name(),
            "expired"
        );
        assert_eq!(
            TlsFailure::of_rustls(&cert(CertificateError::NotValidForName)).name(),
            "name_mismatch"
        );
        assert_eq!(
            TlsFailure::of_rustls(&cert(CertificateError::BadSignature)).name(),
            "bad_certificate"
        );
        let alert = rustls::Error::AlertReceived(AlertDescription::CertificateRequired);
        assert_eq!(
            TlsFailure::of_rustls(&alert).name(),
            "alert_certificate_required"
        );
        let wrapped = io::Error::new(
            io::ErrorKind::InvalidData,
            cert(CertificateError::UnknownIssuer),
        );
        assert_eq!(TlsFailure::of_io(&wrapped), Some(TlsFailure::UnknownCa));
        assert_eq!(
            TlsFailure::of_io(&io::ErrorKind::ConnectionReset.into()),
            None
        );
        assert_eq!(
            TlsFailure::of_handshake_error(&io::ErrorKind::UnexpectedEof.into()),
            TlsFailure::Closed
        );
    }
}
