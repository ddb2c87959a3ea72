//! A step's limits: the per-request deadline, the in-flight cap, the size of the connection
//! pool and the I/O backend. They are declared once here and carried whole by the attack spec, the plan's step and
//! the CLI (ARCHITECTURE.md rule 13), so a new limit cannot reach one of them and not the
//! others; [`Limits::check`] is their one range check.

use std::time::Duration;

/// How much a step may hold at once and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Per-request deadline, from the send to the last byte of the answer (connect included),
    /// enforced within 10 ms.
    pub timeout: Duration,
    /// Due requests beyond this many in flight (sent or queued for a connection) are dropped.
    pub max_in_flight: usize,
    /// `Some(n)`: at most n keep-alive connections; due requests wait (and their schedule lag
    /// shows it) when all are busy. `None`: the capped default policy of [`crate::pool`]:
    /// opened on demand up to a cap from the rate, reused while busy elsewhere, closed when
    /// idle.
    pub connections: Option<usize>,
    /// The cap of the default policy (`None`: the in-flight cap; see [`crate::pool`] for why);
    /// ignored with a fixed `connections` count.
    pub max_connections: Option<usize>,
    /// The I/O backend (`--io`): io_uring where it works by default (see [`crate::io`]).
    pub io: crate::io::IoMode,
}

/// A setting of an attack out of its range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{setting} must be {expected}")]
pub struct SettingError {
    /// `timeout`, `max_in_flight`, `connections`, `max_connections` or `max_streams`.
    pub setting: &'static str,
    pub expected: &'static str,
}

impl Limits {
    /// Checks what the types do not: the one validation of the limits, for the scenario, the
    /// CLI and the engine alike.
    pub fn check(&self) -> Result<(), SettingError> {
        let bad = |setting, expected| Err(SettingError { setting, expected });
        if self.timeout.is_zero() {
            return bad("timeout", "> 0");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight", ">= 1");
        }
        if self.connections == Some(0) {
            return bad("connections", ">= 1");
        }
        if self.max_connections == Some(0) {
            return bad("max_connections", ">= 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            timeout: Duration::from_secs(1),
            max_in_flight: 1,
            connections: None,
            max_connections: None,
            io: crate::io::IoMode::Auto,
        }
    }

    #[test]
    fn each_limit_out_of_range_is_named() {
        assert_eq!(limits().check(), Ok(()));
        let mut cases = [limits(); 4];
        cases[0].timeout = Duration::ZERO;
        cases[1].max_in_flight = 0;
        cases[2].connections = Some(0);
        cases[3].max_connections = Some(0);
        let named = cases.map(|l| l.check().unwrap_err().setting);
        let expected = ["timeout", "max_in_flight", "connections", "max_connections"];
        assert_eq!(named, expected);
    }
}
