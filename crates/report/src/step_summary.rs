//! The readable summary of one step, as `loadgen attack` prints it at the end: the counts
//! that reconcile, the failures by kind, the latency, service-time and schedule-lag
//! percentiles, the generator's own cost and connections, and whether the step is valid.

use loadgen_model::result::{OutcomeCounts, StepResult, TlsSummary};

/// The readable end-of-run summary.
pub fn render(s: &StepResult, url: &str, pool_grow_after: std::time::Duration) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "attack {url}: {:.0} req/s for {:.1} s{}",
        s.rate_rps,
        s.duration_s,
        if s.interrupted { " (interrupted)" } else { "" }
    );
    if let Some(part) = s
        .sharding
        .as_ref()
        .and_then(|h| h.part.as_ref().map(|p| (h, p)))
    {
        let (h, p) = part;
        let late = p
            .late_ms
            .map_or(String::new(), |l| format!(", started {l:.1} ms late"));
        let _ = writeln!(o, "  shard {}/{} of that schedule{late}", p.index, h.count);
    }
    let _ = writeln!(
        o,
        "  intended {}  sent {}  dropped {}  ok {}  failed {}  achieved {} req/s",
        s.intended,
        s.sent,
        s.dropped,
        s.ok,
        s.failed,
        s.achieved_rps
            .map_or_else(|| "-".to_string(), |r| format!("{r:.1}"))
    );
    let failures = failures(&s.outcomes);
    if !failures.is_empty() {
        let _ = writeln!(o, "  failures: {}", failures.join(", "));
    }
    o.push_str(&latency_table(s));
    if let Some(t) = &s.tls {
        o.push_str(&tls_lines(t));
    }
    o.push_str(&generator_lines(s, pool_grow_after));
    match &s.invalid_reason {
        None => {
            let _ = writeln!(o, "  valid: the generator kept its schedule");
        }
        Some(r) => {
            let _ = writeln!(o, "  INVALID: {r}");
        }
    }
    o
}

/// The generator's own cost and its connections.
fn generator_lines(s: &StepResult, pool_grow_after: std::time::Duration) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let g = &s.generator;
    let n = |v: Option<u64>| v.map_or("-".into(), |c| c.to_string());
    let _ = writeln!(
        o,
        "  generator: cpu user {} s, system {} s ({} of {} core), peak in flight {}",
        ms(g.cpu_user_s),
        ms(g.cpu_system_s),
        g.cpu_cores_used.map_or("-".into(), |c| format!("{c:.2}")),
        g.cpu_cores_available
            .map_or("-".into(), |c| format!("{c:.0}")),
        n(g.max_in_flight),
    );
    let policy = match (g.pool_fixed, g.pool_free) {
        (Some(true), _) => "fixed".to_string(),
        (Some(false), Some(free)) => format!(
            "default: {free} at once, {} more after a {} ms wait",
            n(g.connections_grown),
            pool_grow_after.as_millis()
        ),
        (Some(false), None) => "default cap".to_string(),
        (None, _) => "-".to_string(),
    };
    let _ = writeln!(
        o,
        "  connections: {} opened, peak {} of {} ({policy}), {} closed idle; {} requests waited for a connection at the cap",
        n(g.connections_opened),
        n(g.connections_peak),
        n(g.pool_cap),
        n(g.connections_closed_idle),
        n(g.pool_cap_waits),
    );
    // Absent in runs from before the backend was chosen: nothing is claimed for them.
    match (g.io_backend.as_deref(), g.io_fallback_reason.as_deref()) {
        (Some(io), Some(why)) => {
            let _ = writeln!(o, "  io: {io} (not io_uring: {why})");
        }
        (Some("epoll"), None) => {
            let _ = writeln!(o, "  io: epoll (asked for)");
        }
        (Some(io), None) => {
            let _ = writeln!(o, "  io: {io}");
        }
        (None, _) => {}
    }
    o
}

/// The handshakes of a step over TLS: counts and times, one line per failure reason with what
/// it means, and a loud line when certificates were not verified.
fn tls_lines(t: &TlsSummary) -> String {
    use std::fmt::Write as _;
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let mut o = String::new();
    let failed: u64 = t.handshake_failures.values().sum();
    let _ = writeln!(
        o,
        "  tls: {} handshakes ({} resumed{}), {failed} failed; handshake ms p50 {} p99 {} max {}; roots {}{}",
        t.handshakes,
        t.resumed,
        if t.resumption { "" } else { ", resumption off" },
        ms(t.handshake_ms.p50),
        ms(t.handshake_ms.p99),
        ms(t.handshake_ms.max),
        t.roots,
        if t.client_cert { ", client certificate sent" } else { "" },
    );
    for (reason, n) in &t.handshake_failures {
        let why = tls_explain(reason);
        let _ = writeln!(o, "  TLS FAILED {n}x {reason}: {why}");
    }
    if t.insecure {
        let _ = writeln!(
            o,
            "  INSECURE: server certificates were NOT verified (--insecure): nothing proves who answered"
        );
    }
    o
}

/// What a TLS failure reason means, as the engine names them.
fn tls_explain(reason: &str) -> &'static str {
    match reason {
        "unknown_ca" => "the server's certificate is not signed by a trusted CA (give its CA with --cacert FILE, or --insecure)",
        "name_mismatch" => "the server's certificate is not valid for the URL's host",
        "expired" => "the server's certificate is expired or not yet valid",
        "bad_certificate" => "the server's certificate is unusable (signature, encoding or purpose)",
        "no_alpn" => "the server accepts none of the offered protocols (http/1.1, or h2 with --http2)",
        "closed" => "the server closed the connection during the handshake",
        "timeout" => "the handshake did not finish within the request timeout",
        r if r.starts_with("alert_") => "the server refused the handshake with this alert",
        _ => "the TLS exchange broke the protocol",
    }
}

/// The failed requests by kind: exact HTTP codes, then transport failures.
fn failures(c: &OutcomeCounts) -> Vec<String> {
    let mut out: Vec<String> = c
        .status
        .iter()
        .map(|(code, n)| format!("http {code}: {n}"))
        .collect();
    for (name, n) in [
        ("timeout", c.timeout),
        ("connect refused", c.connect_refused),
        ("connect timeout", c.connect_timeout),
        ("reset", c.reset),
        ("other i/o", c.io_other),
    ] {
        if n > 0 {
            out.push(format!("{name}: {n}"));
        }
    }
    out.extend(c.tls.iter().map(|(reason, n)| format!("tls {reason}: {n}")));
    out
}

/// Percentiles of latency, service time and schedule lag, in ms.
fn latency_table(s: &StepResult) -> String {
    use std::fmt::Write as _;
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
    let mut o = format!(
        "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "ms", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, l) in [
        ("latency (from due)", &s.latency_ms),
        ("service time", &s.service_time_ms),
        ("schedule lag", &s.schedule_lag_ms),
    ] {
        let _ = writeln!(
            o,
            "  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max)
        );
    }
    o
}
