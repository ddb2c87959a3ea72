//! A throwaway PKI for TLS tests, made by rcgen on the spot (no openssl CLI, nothing shipped):
//! a CA, a server certificate for `localhost` and 127.0.0.1 signed by it, a client certificate
//! signed by it (mTLS), and a second CA that signed nothing the server shows (a wrong CA). All
//! PEM files in one directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

/// The PEM files of a test PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA that signed the server and client certificates.
    pub ca: PathBuf,
    /// A CA that signed neither: trusting only it must fail every handshake.
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

fn ca(name: &str) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().expect("CA key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (p.self_signed(&key).expect("self-signed CA"), key)
}

fn leaf(
    names: Vec<SanType>,
    purpose: ExtendedKeyUsagePurpose,
    issuer: &(Certificate, KeyPair),
) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().expect("leaf key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
    p.subject_alt_names = names;
    p.distinguished_name
        .push(DnType::CommonName, "loadgen test");
    p.extended_key_usages = vec![purpose];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    (
        p.signed_by(&key, &issuer.0, &issuer.1)
            .expect("signed leaf"),
        key,
    )
}

impl Pki {
    /// Writes a fresh PKI into `dir`.
    pub fn generate(dir: &Path) -> Pki {
        Pki::generate_for(dir, &[])
    }

    /// [`Pki::generate`], the server certificate also valid for `ips` (a cluster Service's
    /// address, say).
    pub fn generate_for(dir: &Path, ips: &[std::net::IpAddr]) -> Pki {
        let root = ca("loadgen test CA");
        let other = ca("loadgen other CA");
        let localhost = SanType::DnsName("localhost".try_into().expect("a DNS name"));
        let mut names = vec![localhost, SanType::IpAddress([127, 0, 0, 1].into())];
        names.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
        let (server, server_key) = leaf(names, ExtendedKeyUsagePurpose::ServerAuth, &root);
        let (client, client_key) = leaf(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, &root);
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write PEM");
            path
        };
        Pki {
            ca: write("ca.pem", root.0.pem()),
            other_ca: write("other-ca.pem", other.0.pem()),
            server_cert: write("server.pem", server.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            client_cert: write("client.pem", client.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
        }
    }
}
