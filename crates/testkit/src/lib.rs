//! Test support shared by the workspace's test suites (a dev-dependency only): the
//! skip-or-fail policy for what a test needs from outside ([`policy`]), free loopback ports
//! ([`port`]), the startup line a `polymetrie` child prints once it listens ([`startup`]), a
//! test PKI made on the spot ([`pki`]) and Debian's nginx as a child serving HTTP or HTTPS
//! ([`nginx`]). One copy of each, where the loadgen and polymetrie suites each had their own.

pub mod nginx;
pub mod pki;
pub mod policy;
pub mod port;
pub mod startup;
