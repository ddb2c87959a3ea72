//! The `polymetrie` service in tests: a child for tests that talk to it directly — it listens
//! on port 0 (and the admin port too when asked), its JSON startup line says where, and it is
//! killed by pid when the value drops, whatever the test did — and the service as the local
//! deployer runs it, for the deployer and probe tests.

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
        http2: false,
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
        let up = loadgen_testkit::startup::read(stdout, START_TIMEOUT);
        assert_eq!(up.pid, child.id());
        let (addr, admin_addr, pid) = (up.addr, up.admin_addr, up.pid);
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
