//! Watching a run while it lasts: subscribers of the campaign's event stream
//! ([`crate::campaign::Events`]) that serve what they keep over HTTP — loadgen's own metrics
//! for Prometheus ([`metrics`]), and a live page for a browser ([`live`]) — through one small
//! read-only server ([`server`]). Each keeps bounded state; none of them can slow the run down
//! more than the lock of one event.

mod exposition;
pub mod live;
pub mod metrics;
pub mod server;

#[cfg(test)]
mod tests;
