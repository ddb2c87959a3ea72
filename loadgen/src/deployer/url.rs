//! The URL deployer: a service that is already running. Nothing is started or stopped; deploy
//! only checks, within the bound, that the target accepts connections.

use std::time::Duration;

use hyper::Uri;
use tokio::net::TcpStream;

use super::{DeployError, Deployment};
use crate::plan::Topology;
use loadgen_engine::tls::TlsSpec;

/// A target given by its base URL.
#[derive(Debug, Clone)]
pub struct UrlDeployer {
    base: String,
    /// The target's TLS keys, for an `https://` base.
    tls: Option<TlsSpec>,
}

impl UrlDeployer {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            tls: None,
        }
    }

    /// The TLS settings its deployments carry when the base is `https://`.
    pub fn with_tls(mut self, tls: &TlsSpec) -> Self {
        self.tls = self.base.starts_with("https://").then(|| tls.clone());
        self
    }

    /// A [`Deployment`] with no replicas of ours; the topology is informational only.
    pub async fn deploy(
        &mut self,
        _topology: &Topology,
        bound: Duration,
    ) -> Result<Deployment, DeployError> {
        let unreachable = |reason: String| DeployError::Unreachable {
            base: self.base.clone(),
            reason,
        };
        let uri: Uri = self
            .base
            .parse()
            .map_err(|e| unreachable(format!("not a url: {e}")))?;
        let authority = uri
            .authority()
            .ok_or_else(|| unreachable("no host in url".into()))?;
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let port = authority.port_u16().unwrap_or(default_port);
        match tokio::time::timeout(bound, TcpStream::connect((authority.host(), port))).await {
            Ok(Ok(_)) => Ok(Deployment {
                tls: self.tls.clone(),
                ..Deployment::external(self.base.clone())
            }),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!("no connection within {bound:?}"))),
        }
    }
}
