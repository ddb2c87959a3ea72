//! What a step over HTTPS saw of TLS: the handshakes (one per connection opened, how many
//! resumed a session, how long they took, which failed and why) and the settings that change
//! what a handshake proves (`insecure`: certificates not verified). Absent from a plain-HTTP
//! step's JSON, so run.json files written before TLS existed read unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LatencySummary;

/// The TLS side of a step (`StepResult.tls`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TlsSummary {
    /// Handshakes completed: one per connection opened.
    pub handshakes: u64,
    /// Of those, the ones that resumed an earlier session (no certificate exchange).
    pub resumed: u64,
    /// Handshakes that failed, by reason (`unknown_ca`, `bad_certificate`, `alert_…`, …). Each
    /// also failed its request: the same reasons are in `outcomes.tls`.
    #[serde(default)]
    pub handshake_failures: BTreeMap<String, u64>,
    /// Time of the completed handshakes, from the TCP connect to the handshake's end.
    pub handshake_ms: LatencySummary,
    /// The same times as an HdrHistogram (µs, V2 deflate, base64), for merging shards.
    #[serde(default)]
    pub handshake_histogram: Option<String>,
    /// Certificates were NOT verified (`--insecure`): the handshakes prove nothing about who
    /// answered.
    pub insecure: bool,
    /// Session resumption was offered (`--tls-resume on`).
    pub resumption: bool,
    /// A client certificate was presented (mTLS).
    #[serde(default)]
    pub client_cert: bool,
    /// Where the trusted roots came from: `system`, or the CA file given.
    pub roots: String,
}
