//! Handshakes: what one connection's TLS handshake came to ([`Handshake`]) and the step's tally
//! of them ([`HandshakeRecord`]): one per connection opened, resumed or full, timed from the TCP
//! connect to the handshake's end, failures by reason. Only a step over HTTPS has one; a plain
//! step records nothing here and pays nothing for it.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::histogram::{new_histogram, serialize_histogram, summarize, HIST_MAX_US};
use crate::tls::{TlsFailure, TlsView};
use loadgen_model::result::TlsSummary;

/// What the handshake of a new connection came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    /// Completed in `took`; `resumed` when it resumed an earlier session.
    Done { took: Duration, resumed: bool },
    /// Failed: the request that opened the connection is counted as this failure too.
    Failed(TlsFailure),
}

/// The handshakes of one step and the settings they ran under.
#[derive(Debug, Clone)]
pub struct HandshakeRecord {
    pub view: TlsView,
    pub handshakes: u64,
    pub resumed: u64,
    pub failures: BTreeMap<TlsFailure, u64>,
    /// Completed handshakes' times, µs.
    pub time: Histogram<u64>,
}

impl HandshakeRecord {
    pub fn new(view: TlsView) -> HandshakeRecord {
        HandshakeRecord {
            view,
            handshakes: 0,
            resumed: 0,
            failures: BTreeMap::new(),
            time: new_histogram(),
        }
    }

    /// Counts one connection's handshake.
    pub fn add(&mut self, h: Handshake) {
        match h {
            Handshake::Done { took, resumed } => {
                self.handshakes += 1;
                self.resumed += u64::from(resumed);
                let us = took.as_micros().min(u128::from(HIST_MAX_US)) as u64;
                self.time.saturating_record(us.max(1));
            }
            Handshake::Failed(f) => *self.failures.entry(f).or_default() += 1,
        }
    }

    /// The saved form.
    pub fn summary(&self) -> TlsSummary {
        TlsSummary {
            handshakes: self.handshakes,
            resumed: self.resumed,
            handshake_failures: self.failures.iter().map(|(f, n)| (f.name(), *n)).collect(),
            handshake_ms: summarize(&self.time),
            handshake_histogram: serialize_histogram(&self.time).ok(),
            insecure: self.view.insecure,
            resumption: self.view.resumption,
            client_cert: self.view.client_cert,
            roots: self.view.roots.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_counted_by_kind_and_failures_by_reason() {
        let mut r = HandshakeRecord::new(TlsView {
            insecure: true,
            resumption: true,
            client_cert: false,
            roots: "none (insecure)".into(),
        });
        let ms = Duration::from_millis;
        r.add(Handshake::Done {
            took: ms(3),
            resumed: false,
        });
        r.add(Handshake::Done {
            took: ms(1),
            resumed: true,
        });
        r.add(Handshake::Failed(TlsFailure::UnknownCa));
        r.add(Handshake::Failed(TlsFailure::UnknownCa));
        let s = r.summary();
        assert_eq!((s.handshakes, s.resumed), (2, 1));
        assert_eq!(s.handshake_failures.get("unknown_ca"), Some(&2));
        assert_eq!(s.handshake_ms.count, 2);
        assert!(s.insecure && s.handshake_histogram.is_some());
    }
}
