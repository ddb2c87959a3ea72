//! The `polymetrie` service in tests: a child for tests that talk to it directly — it listens
//! on port 0 (and the admin port too when asked), its JSON startup line says where, and it is
//! killed by pid when the value drops, whatever the test did — and the service as the local
//! deployer runs it, for the deployer and probe tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use loadgen::plan::LocalService;

use super::external;

/// Bound on the startup line (a loaded 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Readiness bound for deploys in tests (a loaded 2-core machine).
pub const DEPLOY_BOUND: Duration = Duration::from_secs(20);
/// The member site the deployed service serves.
pub const SITE: &str = "demo";

/// The service as the local deployer starts it: `binary`, burning `cost` of CPU per click,
/// serving [`SITE`].
pub fn local_service(binary: PathBuf, cost: Duration) -> LocalService {
    LocalService {
        binary: Some(binary),
        cost,
        sites: vec![SITE.into()],
        workers: None,
        max_inflight: None,
        extra_args: Vec::new(),
    }
}

/// A running `polymetrie`, killed on drop.
pub struct Polymetrie {
    child: Child,
    pub addr: SocketAddr,
    /// Set when started with `--admin-listen`.
    pub admin_addr: Option<SocketAddr>,
    pub pid: u32,
}

impl Polymetrie {
    /// Starts `polymetrie --listen 127.0.0.1:0 ARGS` and reads its startup line; `None` after a
    /// loud skip when the binary cannot be had (a failure under `LOADGEN_REQUIRE_EXTERNAL=1`).
    pub fn start(args: &[&str]) -> Option<Polymetrie> {
        let bin = external::polymetrie()?;
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn polymetrie");
        let stdout = child.stdout.take().expect("piped stdout");
        // Read on a thread so that the wait is bounded; the read ends if the child dies.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .expect("polymetrie printed its startup line in time");
        let v: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("startup line {line:?} is not JSON: {e}"));
        assert_eq!(v["event"], "listening", "{line}");
        let addr = v["addr"]
            .as_str()
            .expect("addr")
            .parse()
            .expect("socket addr");
        let admin_addr = v["admin_addr"]
            .as_str()
            .map(|a| a.parse().expect("admin socket addr"));
        let pid = v["pid"].as_u64().expect("pid") as u32;
        assert_eq!(pid, child.id(), "{line}");
        Some(Polymetrie {
            child,
            addr,
            admin_addr,
            pid,
        })
    }
}

impl Drop for Polymetrie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
