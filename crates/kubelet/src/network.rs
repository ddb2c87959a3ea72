//! The pod network: a bridge on the host holding the subnet's first address, and for each pod a
//! network namespace joined to it by a veth pair, with its own address and a default route via
//! the host. Pods reach each other and the host over the bridge, the host reaches every pod, and
//! nothing is routed off the machine (no NAT to the outside is set up).
//!
//! Done with `ip` from iproute2, as CNI's bridge plugin does through netlink.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Mutex;

use tokio::process::Command;

/// Prefix of every network namespace the stand-in makes; the rest is the address's last octet.
pub const NETNS_PREFIX: &str = "lgtb-";

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("`ip {args}` failed: {stderr}")]
    Ip { args: String, stderr: String },
    #[error("cannot run ip: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("the pod subnet has no free address left")]
    Full,
}

/// The bridge and the addresses handed out on it.
#[derive(Debug)]
pub struct Network {
    bridge: String,
    subnet: [u8; 3],
    used: Mutex<BTreeSet<u8>>,
    /// The last address handed out: the next one is searched after it, as CNI's host-local
    /// IPAM does, so a freed address is not reused at once (its neighbours' ARP caches still
    /// point to the old pod's MAC for a while, and would swallow the new pod's replies).
    last: Mutex<u8>,
}

/// One pod's namespace and address.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub netns: String,
    pub ip: Ipv4Addr,
    octet: u8,
}

impl Sandbox {
    /// `/etc/netns/<netns>`: `ip netns exec` binds the files found here over `/etc` (the pod's
    /// own `hosts`).
    pub fn etc_dir(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.netns)
    }
}

/// A host tool (`ip`, `nsenter`, `unshare`) by absolute path: a container's own `PATH` must
/// not decide which program enters its namespaces.
pub fn host_program(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// iproute2's `ip`.
pub fn ip_program() -> PathBuf {
    host_program("ip")
}

async fn ip(args: &[&str]) -> Result<(), NetworkError> {
    let out = Command::new(ip_program()).args(args).output().await?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NetworkError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// The first free host octet (2 to 254) after `last`, wrapping around.
fn next_free(used: &BTreeSet<u8>, last: u8) -> Option<u8> {
    (last.saturating_add(1)..=254)
        .chain(2..=last.min(254))
        .find(|o| *o >= 2 && !used.contains(o))
}

impl Network {
    /// Makes the bridge (when missing) and removes namespaces a previous stand-in left behind
    /// (their processes died with it: the stand-in stops its pods when it stops).
    pub async fn start(bridge: &str, subnet: Ipv4Addr) -> Result<Network, NetworkError> {
        let [a, b, c, _] = subnet.octets();
        let net = Network {
            bridge: bridge.to_string(),
            subnet: [a, b, c],
            used: Mutex::new(BTreeSet::new()),
            last: Mutex::new(1),
        };
        if ip(&["link", "show", bridge]).await.is_err() {
            ip(&["link", "add", bridge, "type", "bridge"]).await?;
            ip(&["addr", "add", &format!("{a}.{b}.{c}.1/24"), "dev", bridge]).await?;
        }
        ip(&["link", "set", bridge, "up"]).await?;
        let list = Command::new(ip_program())
            .args(["netns", "list"])
            .output()
            .await?;
        for line in String::from_utf8_lossy(&list.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if name.starts_with(NETNS_PREFIX) {
                tracing::warn!("removing stale network namespace {name}");
                let _ = ip(&["netns", "del", name]).await;
                let _ = std::fs::remove_dir_all(PathBuf::from("/etc/netns").join(name));
            }
        }
        Ok(net)
    }

    /// A new namespace with the next free address, its veth on the bridge and a default route
    /// via the host.
    pub async fn sandbox(&self) -> Result<Sandbox, NetworkError> {
        let octet = {
            let mut used = self.used.lock().unwrap();
            let mut last = self.last.lock().unwrap();
            let octet = next_free(&used, *last).ok_or(NetworkError::Full)?;
            used.insert(octet);
            *last = octet;
            octet
        };
        let [a, b, c] = self.subnet;
        let sandbox = Sandbox {
            netns: format!("{NETNS_PREFIX}{octet}"),
            ip: Ipv4Addr::new(a, b, c, octet),
            octet,
        };
        if let Err(e) = self.wire(&sandbox).await {
            self.release(&sandbox).await;
            return Err(e);
        }
        Ok(sandbox)
    }

    async fn wire(&self, s: &Sandbox) -> Result<(), NetworkError> {
        let host_end = format!("lgtbh{}", s.octet);
        let [a, b, c] = self.subnet;
        ip(&["netns", "add", &s.netns]).await?;
        ip(&[
            "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &s.netns,
        ])
        .await?;
        ip(&["link", "set", &host_end, "master", &self.bridge, "up"]).await?;
        let ns = s.netns.as_str();
        ip(&[
            "-n",
            ns,
            "addr",
            "add",
            &format!("{}/24", s.ip),
            "dev",
            "eth0",
        ])
        .await?;
        ip(&["-n", ns, "link", "set", "eth0", "up"]).await?;
        ip(&["-n", ns, "link", "set", "lo", "up"]).await?;
        ip(&[
            "-n",
            ns,
            "route",
            "add",
            "default",
            "via",
            &format!("{a}.{b}.{c}.1"),
        ])
        .await
    }

    /// Deletes the namespace (its veth goes with it) and frees the address.
    pub async fn release(&self, s: &Sandbox) {
        if let Err(e) = ip(&["netns", "del", &s.netns]).await {
            tracing::warn!("{e}");
        }
        let _ = std::fs::remove_dir_all(s.etc_dir());
        self.used.lock().unwrap().remove(&s.octet);
    }

    /// Removes the bridge (when the stand-in stops).
    pub async fn stop(&self) {
        let _ = ip(&["link", "del", &self.bridge]).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_address_waits_for_its_turn() {
        let used: BTreeSet<u8> = [3].into();
        assert_eq!(next_free(&used, 1), Some(2));
        assert_eq!(next_free(&used, 2), Some(4));
        assert_eq!(next_free(&used, 254), Some(2));
        let full: BTreeSet<u8> = (2..=254).collect();
        assert_eq!(next_free(&full, 7), None);
    }
}
