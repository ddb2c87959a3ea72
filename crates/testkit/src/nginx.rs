//! Debian's nginx as a child serving a fixed 200 on a free loopback port, plain or over TLS
//! (optionally asking for a client certificate, closing every connection after one answer, or
//! speaking HTTP/2), with its own access log as the count to reconcile with: one line per
//! request, its status, whether its TLS session was resumed, its protocols and its connection. Started with its config, pid file,
//! logs and temp paths in a temp dir; ended by its pid when dropped (ARCHITECTURE.md rule 14).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{policy, port::free_port};

/// How long nginx may take to listen.
const START_BOUND: Duration = Duration::from_secs(10);
/// How long the access log may lag the answers (nginx logs once a request is finalised).
const LOG_BOUND: Duration = Duration::from_secs(5);

/// What the server does.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Serve TLS with this certificate and key (PEM); plain HTTP when `None`.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Require a client certificate signed by this CA (`ssl_verify_client on`).
    pub client_ca: Option<PathBuf>,
    /// Close each connection after one answer (`keepalive_timeout 0`), so every request opens
    /// a new connection and a new handshake.
    pub close_after_each: bool,
    /// Speak HTTP/2 (`listen … http2`: ALPN h2 with TLS, prior knowledge without; nginx 1.22's
    /// form, which later versions still take).
    pub http2: bool,
    /// Requests one connection serves before nginx closes it (`keepalive_requests`; with
    /// HTTP/2 a GOAWAY); `None`: practically unbounded.
    pub max_requests: Option<u32>,
}

/// Bytes of the answer under `/slow`, sent at [`SLOW_RATE`]: about two seconds each, so
/// requests overlap without the server burning CPU.
pub const SLOW_BYTES: usize = 2048;
/// nginx's `limit_rate` of `/slow`.
pub const SLOW_RATE: &str = "1k";

/// A running nginx.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    access_log: PathBuf,
    _dir: tempfile::TempDir,
}

fn config_text(c: &Config, dir: &Path, port: u16) -> String {
    let d = dir.display();
    let mut listen = format!("listen 127.0.0.1:{port}");
    let mut tls = String::new();
    if c.tls.is_some() {
        listen.push_str(" ssl");
    }
    if c.http2 {
        listen.push_str(" http2");
    }
    if let Some((cert, key)) = &c.tls {
        tls = format!(
            "ssl_certificate {};\n    ssl_certificate_key {};\n    ssl_session_cache shared:tls:1m;\n",
            cert.display(),
            key.display()
        );
    }
    if let Some(ca) = &c.client_ca {
        tls.push_str(&format!(
            "    ssl_client_certificate {};\n    ssl_verify_client on;\n",
            ca.display()
        ));
    }
    let keepalive = if c.close_after_each { "0" } else { "75s" };
    let max_requests = c.max_requests.unwrap_or(100_000);
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 512; }}\n\
         http {{\n  log_format counted '$status $ssl_session_reused $ssl_protocol $server_protocol $connection';\n\
         access_log {d}/access.log counted;\n  client_body_temp_path {d}/body;\n\
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         keepalive_timeout {keepalive};\n  keepalive_requests {max_requests};\n\
         server {{\n    {listen};\n    {tls}\n    location / {{ return 200 \"ok\\n\"; }}\n\
         location = /slow {{ root {d}; limit_rate {SLOW_RATE}; }}\n  }}\n}}\n"
    )
}

impl Nginx {
    /// Starts nginx with `config`; `None` after a loud skip when nginx is not installed (a
    /// failure under `LOADGEN_REQUIRE_EXTERNAL=1`).
    pub fn start(config: &Config) -> Option<Nginx> {
        let bin = policy::binary("nginx", "nginx").or_else(|| {
            let debian = PathBuf::from("/usr/sbin/nginx");
            debian.exists().then_some(debian)
        })?;
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config_text(config, dir.path(), port)).expect("write nginx.conf");
        std::fs::write(dir.path().join("slow"), vec![b'x'; SLOW_BYTES]).expect("write /slow");
        let error_log = dir.path().join("error.log");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut n = Nginx {
            child,
            addr,
            access_log: dir.path().join("access.log"),
            _dir: dir,
        };
        n.wait_listening(&error_log);
        Some(n)
    }

    fn wait_listening(&mut self, error_log: &Path) {
        let until = Instant::now() + START_BOUND;
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(error_log).unwrap_or_default();
                panic!("nginx exited ({status}) before listening:\n{log}");
            }
            assert!(
                Instant::now() < until,
                "nginx did not listen within {START_BOUND:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The access log's lines: `STATUS REUSED TLS-PROTOCOL HTTP-PROTOCOL CONNECTION` (`r` or
    /// `.` for a resumed session; the connection's serial number).
    pub fn log_lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Requests nginx logged with `status`, once the log holds at least `expected` lines or
    /// [`LOG_BOUND`] has passed (the last answers can be read before they are logged).
    pub fn count(&self, status: u16, expected: usize) -> usize {
        let until = Instant::now() + LOG_BOUND;
        while self.log_lines().len() < expected && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let prefix = format!("{status} ");
        self.log_lines()
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .count()
    }

    /// The connections (nginx's serial numbers) that carried the logged requests.
    pub fn connections(&self) -> std::collections::BTreeSet<String> {
        self.log_lines()
            .iter()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .collect()
    }

    /// Requests whose TLS session nginx saw resumed.
    pub fn resumed(&self) -> usize {
        self.log_lines()
            .iter()
            .filter(|l| l.split(' ').nth(1) == Some("r"))
            .count()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Our own child, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
