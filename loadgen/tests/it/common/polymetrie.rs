//! The `polymetrie` service in tests: a child for tests that talk to it directly — it listens
//! on port 0 (and the admin port too when asked), its JSON startup line says where, and it is
//! killed by pid when the value drops, whatever the test did — and the service as the local
//! deployer runs it, for the deployer and probe tests. [`Polymetrie::run_one_step`] is the
//! short `loadgen run` against a started one that the log tests share.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use loadgen::plan::LocalService;

use super::{command, external};

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

/// What [`Polymetrie::run_one_step`] left: its folder (kept while this lives) and the run.
pub struct OneStepRun {
    pub dir: tempfile::TempDir,
    pub output: Output,
}

impl OneStepRun {
    /// The run's `--out` folder.
    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }
}

impl Polymetrie {
    /// `loadgen run` of one step `c/s1` against this service as a URL target (no cgroups or
    /// Redis needed): 40 clicks/s on site `s` (the service must serve it) for `duration`,
    /// scenario `name`, `--out <dir>/run` and `args`.
    pub fn run_one_step(&self, name: &str, duration: &str, args: &[&str]) -> OneStepRun {
        let dir = super::tempdir(name);
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, one_step_scenario(name, self.addr, duration)).unwrap();
        let output = command::loadgen()
            .arg("run")
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join("run"))
            .args(args)
            .output()
            .unwrap();
        OneStepRun { dir, output }
    }
}

fn one_step_scenario(name: &str, addr: SocketAddr, duration: &str) -> String {
    format!(
        "name = \"{name}\"\ncounter_site = \"s\"\n[target]\nkind = \"url\"\nurl = \"http://{addr}\"\n\
         [request]\nmethod = \"POST\"\npath = \"/api/clicks\"\n\
         headers = {{ \"content-type\" = \"application/json\" }}\n\
         body = '{{\"site\":\"s\",\"url\":\"/p\"}}'\n\
         [[campaign]]\nname = \"c\"\n[[campaign.step]]\nname = \"s1\"\nrate = 40\nduration = \"{duration}\"\n"
    )
}

/// Reads a run's saved run.json.
pub fn saved_run(out_dir: &Path) -> loadgen_model::result::CampaignResult {
    serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap()
}

impl Drop for Polymetrie {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
