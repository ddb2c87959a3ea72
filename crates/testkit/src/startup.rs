//! The one line `polymetrie` prints on stdout once every listener is bound:
//! `{"event":"listening","addr":"IP:PORT","admin_addr":"IP:PORT"|null,"pid":N}`, read with a
//! bound (on a thread, so a child that never prints cannot hang the test). Under
//! `--log-format json` the same keys come inside a full log line (`time`, `level`, `message`,
//! …); only the keys above are read, so both forms parse.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::ChildStdout;
use std::time::Duration;

/// What the startup line says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listening {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub pid: u32,
}

/// Reads the startup line from `stdout` within `bound`; panics with what was read otherwise.
pub fn read(stdout: ChildStdout, bound: Duration) -> Listening {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(bound)
        .expect("polymetrie printed its startup line in time");
    parse(&line)
}

/// Parses a startup line; panics naming the line when it is not one.
pub fn parse(line: &str) -> Listening {
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .unwrap_or_else(|e| panic!("startup line {line:?} is not JSON: {e}"));
    assert_eq!(v["event"], "listening", "{line}");
    let addr = |key: &str| v[key].as_str().map(|a| a.parse().expect("socket addr"));
    Listening {
        addr: addr("addr").expect("addr"),
        admin_addr: addr("admin_addr"),
        pid: v["pid"].as_u64().expect("pid") as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_startup_line_gives_the_addresses_and_the_pid() {
        let l = parse(r#"{"event":"listening","addr":"127.0.0.1:8080","admin_addr":null,"pid":7}"#);
        assert_eq!(l.addr.port(), 8080);
        assert_eq!(l.admin_addr, None);
        assert_eq!(l.pid, 7);
    }

    #[test]
    fn the_log_line_form_of_log_format_json_parses_too() {
        let l = parse(
            r#"{"time":"2026-12-01T10:00:00.123456Z","level":"info","message":"polymetrie listening","target":"polymetrie","replica":"pod-1","addr":"127.0.0.1:8080","admin_addr":"127.0.0.1:9090","event":"listening","pid":7}"#,
        );
        assert_eq!(l.addr.port(), 8080);
        assert_eq!(l.admin_addr.map(|a| a.port()), Some(9090));
        assert_eq!(l.pid, 7);
    }
}
