//! Test support for the service's process tests: starting `polymetrie` and `redis-server` as
//! children on free loopback ports and a small HTTP/1.1 client; the external-binary policy, free
//! ports and the startup line are the workspace's one test kit (`loadgen-testkit`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Bound on any child becoming ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);

/// `name` on PATH or in the Debian server dirs; `None` after a loud skip message, or a panic
/// when `LOADGEN_REQUIRE_EXTERNAL=1` so CI cannot pass by skipping.
pub fn binary_for_test(name: &str, package: &str) -> Option<PathBuf> {
    loadgen_testkit::policy::binary(name, package)
}

pub use loadgen_testkit::port::free_port;

/// Sends a signal with the `kill` program (the test crate forbids unsafe code).
pub fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{sig} {pid} failed");
}

/// Polls `child` until it exits or `bound` passes.
pub fn wait_exit(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file in the temp dir, removed on drop (token files for `--admin-token-file`).
pub struct TempFile {
    pub path: PathBuf,
}

impl TempFile {
    pub fn new(name: &str, content: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "polymetrie-test-{}-{}-{name}",
            std::process::id(),
            free_port()
        ));
        std::fs::write(&path, content).unwrap();
        TempFile { path }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running `polymetrie` child, killed on drop.
pub struct Service {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub pid: u32,
    /// Where stderr goes when started with [`Service::start_logging`].
    log: Option<TempFile>,
}

impl Service {
    /// Starts the service with `args` (plus `--listen 127.0.0.1:0` unless given) and reads the
    /// startup line.
    pub fn start(args: &[&str]) -> Service {
        Self::start_with_env(args, &[])
    }

    /// Like [`Service::start`], with extra environment variables (`POLYMETRIE_*`).
    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Service {
        Self::spawn(args, envs, None)
    }

    /// Like [`Service::start`] with `RUST_LOG=trace` and stderr kept for [`Service::log_text`].
    pub fn start_logging(args: &[&str]) -> Service {
        Self::spawn(args, &[], Some(TempFile::new("stderr.log", "")))
    }

    /// Everything the service logged so far (only with [`Service::start_logging`]).
    pub fn log_text(&self) -> String {
        let log = self.log.as_ref().expect("started with start_logging");
        std::fs::read_to_string(&log.path).unwrap()
    }

    fn spawn(args: &[&str], envs: &[(&str, &str)], log: Option<TempFile>) -> Service {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_polymetrie"));
        if !args.contains(&"--listen") && !envs.iter().any(|(k, _)| *k == "POLYMETRIE_LISTEN") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.envs(envs.iter().copied());
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        match &log {
            Some(f) => {
                cmd.env("RUST_LOG", "trace")
                    .stderr(std::fs::File::create(&f.path).unwrap());
            }
            None => {
                cmd.env("RUST_LOG", "warn").stderr(Stdio::inherit());
            }
        }
        let mut child = cmd.spawn().expect("spawn polymetrie");
        let stdout = child.stdout.take().unwrap();
        let up = loadgen_testkit::startup::read(stdout, START_TIMEOUT);
        assert_eq!(up.pid, child.id());
        let (addr, admin, pid) = (up.addr, up.admin_addr, up.pid);
        Service {
            child,
            addr,
            admin,
            pid,
            log,
        }
    }

    pub fn sigterm(&self) {
        signal(self.pid, "TERM");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A throwaway `redis-server` on a free port, persistence off, killed on drop.
pub struct Redis {
    pub child: Child,
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
}

impl Redis {
    /// `None` (after a loud skip) when redis-server is not installed.
    pub fn start() -> Option<Redis> {
        let bin = binary_for_test("redis-server", "redis-server")?;
        let dir = std::env::temp_dir().join(format!(
            "polymetrie-test-redis-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let child = Self::spawn(&bin, port, &dir);
        let r = Redis {
            child,
            port,
            dir,
            bin,
        };
        r.wait_ready();
        Some(r)
    }

    fn spawn(bin: &PathBuf, port: u16, dir: &PathBuf) -> Child {
        Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server")
    }

    fn wait_ready(&self) {
        use std::io::{Read, Write};
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 16];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read(&mut buf).unwrap_or(0) > 0
                    && buf.starts_with(b"+PONG")
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server not ready in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (simulating a crash).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts a fresh server on the same port (empty: persistence is off).
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn(&self.bin, self.port, &self.dir);
        self.wait_ready();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

mod client;
mod load;

// Every test binary compiles this support and uses its own part of it.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use load::*;
