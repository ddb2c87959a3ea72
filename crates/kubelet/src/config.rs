//! The stand-in's command line: which node it is, where the pods' state lives, the pod network,
//! its serving port and certificate, and which local program stands for which image.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::Parser;

/// Runs the pods bound to one Node as local processes (a kubelet stand-in for the testbed).
#[derive(Debug, Clone, Parser)]
#[command(name = "testbed-kubelet", version)]
pub struct Config {
    /// The Node's name.
    #[arg(long, default_value = "testbed-node")]
    pub node_name: String,
    /// Where pods keep their volumes and logs (one folder per pod).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The host side of the pod network: a bridge with the first address of `--pod-subnet`.
    #[arg(long, default_value = "lgtb0")]
    pub bridge: String,
    /// The pods' /24 (the host is .1, pods get .2 to .254).
    #[arg(long, default_value = "10.244.0.0")]
    pub pod_subnet: Ipv4Addr,
    /// The kubelet's HTTPS port (/metrics/resource, /containerLogs), on the bridge address.
    #[arg(long, default_value_t = 10250)]
    pub port: u16,
    #[arg(long)]
    pub tls_cert: PathBuf,
    #[arg(long)]
    pub tls_key: PathBuf,
    /// `IMAGE=PROGRAM`: pods whose image is named IMAGE (registry, tag and digest aside) run
    /// PROGRAM. Repeatable. Any other image fails its pod with a reason that says so.
    #[arg(long = "image", value_parser = parse_image)]
    pub images: Vec<(String, PathBuf)>,
    /// The API server as pods reach it (`KUBERNETES_SERVICE_HOST`/`_PORT`), `HOST:PORT`.
    #[arg(long)]
    pub api_endpoint: Option<String>,
    /// `LISTEN=TARGET`: relay the node's `LISTEN` to the apiserver at `TARGET` (see `relay`).
    #[arg(long, value_parser = crate::relay::parse)]
    pub api_relay: Option<(std::net::SocketAddr, std::net::SocketAddr)>,
    /// The cluster CA, published to pods beside their service-account token.
    #[arg(long)]
    pub cluster_ca: Option<PathBuf>,
    /// The CPUs the Node advertises (default: this machine's). More than the machine has lets
    /// the scheduler place what a test needs on a small machine; each container's CFS quota,
    /// and so its contention for the real cores, is unchanged.
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Where cgroup hierarchies are mounted.
    #[arg(long, default_value = cpu_cgroup::CGROUP_ROOT)]
    pub cgroup_root: PathBuf,
}

fn parse_image(s: &str) -> Result<(String, PathBuf), String> {
    let (name, program) = s
        .split_once('=')
        .ok_or_else(|| format!("expected IMAGE=PROGRAM, got {s:?}"))?;
    if name.is_empty() || program.is_empty() {
        return Err(format!("expected IMAGE=PROGRAM, got {s:?}"));
    }
    Ok((name.to_string(), PathBuf::from(program)))
}

impl Config {
    /// The host's address on the pod network (the bridge's).
    pub fn host_ip(&self) -> Ipv4Addr {
        let [a, b, c, _] = self.pod_subnet.octets();
        Ipv4Addr::new(a, b, c, 1)
    }
}
