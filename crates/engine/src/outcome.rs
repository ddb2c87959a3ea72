//! Outcomes: what became of one request, in the fixed taxonomy of [`OutcomeCounts`], and the
//! classification of client errors into it. A failed request is data, never an `Err`.

use std::collections::BTreeMap;
use std::io;

use crate::tls::TlsFailure;
use loadgen_model::result::OutcomeCounts;

/// What became of one due request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Ok,
    /// A complete answer with a non-2xx status (exact code kept).
    Status(u16),
    /// No complete answer within the request timeout.
    Timeout,
    ConnectRefused,
    ConnectTimeout,
    /// The peer reset or closed the connection mid-request.
    Reset,
    /// Any other I/O or protocol error.
    IoOther,
    /// TLS failed: the handshake of the connection the request opened, or an alert mid-exchange.
    Tls(TlsFailure),
    /// Due but never sent: the in-flight cap was reached.
    Dropped,
}

impl Outcome {
    /// The outcome of a complete answer with this status.
    pub fn from_status(code: u16) -> Self {
        if (200..300).contains(&code) {
            Outcome::Ok
        } else {
            Outcome::Status(code)
        }
    }

    /// True for outcomes of requests that were sent and did not succeed.
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::Dropped)
    }

    /// True when the outcome carries a latency worth recording: an answer of any status, or a
    /// timeout (recorded at the time it fired: a lower bound, but never hidden). Connection
    /// errors are counted only; their time says nothing about the service.
    pub fn has_latency(self) -> bool {
        matches!(self, Outcome::Ok | Outcome::Status(_) | Outcome::Timeout)
    }

    /// Classifies an error from connecting (the connect itself, not its timeout).
    pub fn from_connect_error(e: &io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Outcome::ConnectRefused,
            io::ErrorKind::TimedOut => Outcome::ConnectTimeout,
            _ => Outcome::IoOther,
        }
    }

    /// Classifies an error from exchanging a request on an open connection (a TLS error, which
    /// tokio-rustls wraps in an `io::Error`, is a TLS outcome).
    pub fn from_io_error(e: &io::Error) -> Self {
        if let Some(f) = TlsFailure::of_io(e) {
            return Outcome::Tls(f);
        }
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof => Outcome::Reset,
            io::ErrorKind::TimedOut => Outcome::Timeout,
            _ => Outcome::IoOther,
        }
    }
}

/// Running counts per outcome, kept without allocation on the hot path (status codes by array
/// index) and turned into [`OutcomeCounts`] at the end.
#[derive(Debug, Clone)]
pub struct OutcomeTally {
    pub ok: u64,
    /// Index = status code (100..=999 fit; anything else lands in `io_other`).
    status: Box<[u64; 1000]>,
    pub timeout: u64,
    pub connect_refused: u64,
    pub connect_timeout: u64,
    pub reset: u64,
    pub io_other: u64,
    /// TLS failures by reason (allocated at the first one only).
    pub tls: BTreeMap<TlsFailure, u64>,
    pub dropped: u64,
}

impl Default for OutcomeTally {
    fn default() -> Self {
        Self {
            ok: 0,
            status: Box::new([0; 1000]),
            timeout: 0,
            connect_refused: 0,
            connect_timeout: 0,
            reset: 0,
            io_other: 0,
            tls: BTreeMap::new(),
            dropped: 0,
        }
    }
}

impl OutcomeTally {
    /// Counts one outcome.
    pub fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Ok => self.ok += 1,
            Outcome::Status(c) if (c as usize) < self.status.len() => self.status[c as usize] += 1,
            Outcome::Status(_) => self.io_other += 1,
            Outcome::Timeout => self.timeout += 1,
            Outcome::ConnectRefused => self.connect_refused += 1,
            Outcome::ConnectTimeout => self.connect_timeout += 1,
            Outcome::Reset => self.reset += 1,
            Outcome::IoOther => self.io_other += 1,
            Outcome::Tls(f) => *self.tls.entry(f).or_default() += 1,
            Outcome::Dropped => self.dropped += 1,
        }
    }

    /// Requests sent that did not succeed.
    pub fn failed(&self) -> u64 {
        self.status.iter().sum::<u64>()
            + self.timeout
            + self.connect_refused
            + self.connect_timeout
            + self.reset
            + self.io_other
            + self.tls.values().sum::<u64>()
    }

    /// The saved form.
    pub fn to_counts(&self) -> OutcomeCounts {
        OutcomeCounts {
            ok: self.ok,
            status: self
                .status
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(c, n)| (c.to_string(), *n))
                .collect(),
            timeout: self.timeout,
            connect_refused: self.connect_refused,
            connect_timeout: self.connect_timeout,
            reset: self.reset,
            io_other: self.io_other,
            dropped: self.dropped,
            tls: self.tls.iter().map(|(f, n)| (f.name(), *n)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_keeps_exact_codes_and_reconciles() {
        let mut t = OutcomeTally::default();
        for o in [
            Outcome::from_status(204),
            Outcome::from_status(503),
            Outcome::from_status(503),
            Outcome::from_status(404),
            Outcome::Timeout,
            Outcome::Reset,
            Outcome::Tls(TlsFailure::UnknownCa),
            Outcome::Dropped,
        ] {
            t.add(o);
        }
        let c = t.to_counts();
        assert_eq!(c.ok, 1);
        assert_eq!(c.status.get("503"), Some(&2));
        assert_eq!(c.status.get("404"), Some(&1));
        assert_eq!(t.failed(), 6);
        assert_eq!(c.tls.get("unknown_ca"), Some(&1));
        assert_eq!(c.dropped, 1);
    }
}
