//! The API server as pods reach it: a TCP relay from the node's bridge address to the
//! apiserver on loopback (it binds 127.0.0.1 only, which no pod namespace can reach). Pods get
//! the relay's address as `KUBERNETES_SERVICE_HOST`/`_PORT`; TLS passes through untouched, so a
//! pod verifies the apiserver's own certificate (which names the bridge address) and
//! authenticates with its own service-account token.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// `LISTEN=TARGET`, e.g. `10.244.0.1:6443=127.0.0.1:26402`.
pub fn parse(s: &str) -> Result<(SocketAddr, SocketAddr), String> {
    let (l, t) = s
        .split_once('=')
        .ok_or_else(|| format!("expected LISTEN=TARGET, got {s:?}"))?;
    let l = l.parse().map_err(|e| format!("{l:?}: {e}"))?;
    let t = t.parse().map_err(|e| format!("{t:?}: {e}"))?;
    Ok((l, t))
}

/// Relays every connection to `listen` to `target` until `stop`.
pub async fn serve(
    listen: SocketAddr,
    target: SocketAddr,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (mut inbound, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = stop.cancelled() => return Ok(()),
        };
        tokio::spawn(async move {
            let Ok(mut outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        });
    }
}
