//! The run's own PKI for `tls = true` steps: a CA made for this run only and a server
//! certificate it signed for the loopback names a local replica answers on (`localhost`,
//! 127.0.0.1, ::1), as PEM files in a folder of the run's own. The replicas serve with the
//! certificate; the generator and the probes trust the CA and nothing else, so a step over
//! TLS verifies certificates exactly as a client of the real service would (no `insecure`).
//! Made once, on the first TLS step, and removed with the deployer.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::workdir::WorkDir;

/// Why the run's certificates could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot make the run's TLS certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write the run's TLS files in {0}: {1}")]
    Write(PathBuf, std::io::Error),
}

/// The PEM files of the run's PKI.
#[derive(Debug)]
pub struct Pki {
    /// The CA the load and the probes trust.
    pub ca: PathBuf,
    /// The server certificate chain (the certificate, then the CA).
    pub cert: PathBuf,
    /// The server certificate's private key (PKCS#8), readable by its owner only.
    pub key: PathBuf,
    // Last: the files go with it.
    _dir: WorkDir,
}

impl Pki {
    /// Makes a CA and a server certificate (ECDSA P-256) and writes them into a new folder.
    pub fn generate() -> Result<Pki, PkiError> {
        let dir = WorkDir::create("tls").map_err(|e| PkiError::Write(std::env::temp_dir(), e))?;
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.distinguished_name
            .push(DnType::CommonName, "loadgen run CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key)?;
        let key = KeyPair::generate()?;
        let mut leaf = CertificateParams::new(Vec::<String>::new())?;
        leaf.subject_alt_names = vec![
            SanType::DnsName("localhost".try_into()?),
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
        ];
        leaf.distinguished_name
            .push(DnType::CommonName, "loadgen replica");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let leaf = leaf.signed_by(&key, &ca, &ca_key)?;
        let path = dir.path().to_path_buf();
        Ok(Pki {
            ca: write(&path, "ca.pem", &ca.pem(), false)?,
            cert: write(&path, "server.pem", &(leaf.pem() + &ca.pem()), false)?,
            key: write(&path, "server.key", &key.serialize_pem(), true)?,
            _dir: dir,
        })
    }

    /// The run's PKI in `slot`, made on first use.
    pub fn ensure(slot: &mut Option<Pki>) -> Result<&Pki, PkiError> {
        if slot.is_none() {
            *slot = Some(Pki::generate()?);
        }
        Ok(slot.as_ref().expect("just made"))
    }

    /// How the load and the probes reach a replica serving this certificate: trusting this CA
    /// and nothing else.
    pub fn trust(&self) -> loadgen_engine::tls::TlsSpec {
        loadgen_engine::tls::TlsSpec {
            cacert: Some(self.ca.clone()),
            ..loadgen_engine::tls::TlsSpec::default()
        }
    }

    /// `(certificate, key)` as a replica's `{tls_cert}` and `{tls_key}` take them.
    pub fn server_files(&self) -> (PathBuf, PathBuf) {
        (self.cert.clone(), self.key.clone())
    }
}

fn write(dir: &Path, name: &str, pem: &str, secret: bool) -> Result<PathBuf, PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let mode = if secret { 0o600 } else { 0o644 };
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .and_then(|mut f| f.write_all(pem.as_bytes()))
        .map_err(|e| PkiError::Write(path.clone(), e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen_engine::tls::TlsSpec;

    #[test]
    fn the_engine_trusts_the_run_ca_and_the_key_is_private() {
        let pki = Pki::generate().unwrap();
        let spec = TlsSpec {
            cacert: Some(pki.ca.clone()),
            ..TlsSpec::default()
        };
        // The engine's own parser accepts the CA (one root) and the host names.
        spec.client("127.0.0.1", false).unwrap();
        spec.client("localhost", true).unwrap();
        let mode = std::fs::metadata(&pki.key).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let chain = std::fs::read_to_string(&pki.cert).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2, "{chain}");
        let dir = pki.ca.parent().unwrap().to_path_buf();
        drop(pki);
        assert!(!dir.exists(), "the run's TLS folder outlived it");
    }
}
