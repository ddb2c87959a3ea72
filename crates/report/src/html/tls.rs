//! The TLS section: what encryption cost each step, when any step spoke TLS. Every step of the
//! run is a row (plain ones too), so a TLS on/off pair at the same rate and quota reads side by
//! side: handshakes and how many resumed, failures, handshake time, and the replicas' CPU per
//! answered request, the number TLS moves. Certificates not verified (`insecure`) are said in
//! the row, loudly: such a step proves nothing about who answered.

use std::fmt::Write as _;

use crate::row::{num, rows};
use loadgen_model::result::{CampaignResult, StepResult};

use super::escape::esc;
use super::numbers::td;

/// The section, or nothing when no step spoke TLS.
pub(super) fn write(h: &mut String, r: &CampaignResult) {
    if !r.steps.iter().any(|s| s.tls.is_some()) {
        return;
    }
    h.push_str(
        "<section id=\"tls\">\n<h2>TLS: what the handshakes cost</h2>\n\
         <p>Each connection pays one handshake; a resumed one skips the certificate exchange. \
         CPU per request is the replicas' cgroup CPU over the step divided by its 2xx answers.</p>\n\
         <table>\n<thead><tr><th class=\"l\">step</th><th class=\"l\">configuration</th>\
         <th>rate (req/s)</th><th class=\"l\">TLS</th><th>handshakes</th><th>resumed %</th>\
         <th>failed</th><th>handshake p50 (ms)</th><th>handshake p99 (ms)</th>\
         <th>replica CPU (cores)</th><th>CPU per request (ms)</th></tr></thead>\n<tbody>\n",
    );
    for (row, s) in rows(r).iter().zip(&r.steps) {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td>",
            esc(&row.key()),
            esc(&row.configuration_label()),
            row.rate_cell(),
            protocol(s)
        );
        let t = s.tls.as_ref();
        td(h, t.map(|t| t.handshakes.to_string()));
        td(
            h,
            t.filter(|t| t.handshakes > 0)
                .map(|t| num(100.0 * t.resumed as f64 / t.handshakes as f64, 1)),
        );
        td(
            h,
            t.map(|t| t.handshake_failures.values().sum::<u64>().to_string()),
        );
        td(h, t.and_then(|t| t.handshake_ms.p50).map(|v| num(v, 2)));
        td(h, t.and_then(|t| t.handshake_ms.p99).map(|v| num(v, 2)));
        td(h, row.cpu_total_cell());
        td(h, cpu_per_request_ms(s).map(|v| num(v, 3)));
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

/// "yes", "no", or the loud warning of an unverified step (HTML).
fn protocol(s: &StepResult) -> String {
    match &s.tls {
        None => "no".into(),
        Some(t) if t.insecure => {
            "<span class=\"sev-fail\">yes, certificates NOT verified (insecure)</span>".into()
        }
        Some(t) => format!("yes (roots: {})", esc(&t.roots)),
    }
}

/// The replicas' CPU milliseconds per 2xx answer; unknown without a CPU reading or an answer.
fn cpu_per_request_ms(s: &StepResult) -> Option<f64> {
    let cpu = s.cpu.as_ref()?;
    per_request_ms(cpu.cores_used?, cpu.window_s.unwrap_or(s.duration_s), s.ok)
}

/// `cores` busy over `window_s` seconds, in milliseconds per one of `ok` answers.
fn per_request_ms(cores: f64, window_s: f64, ok: u64) -> Option<f64> {
    (ok > 0).then(|| cores * window_s * 1000.0 / ok as f64)
}

#[cfg(test)]
mod tests {
    use super::per_request_ms;

    #[test]
    fn cpu_per_request_is_the_cpu_time_over_the_answers_and_unknown_without_one() {
        // 0.5 core for 10 s is 5 s of CPU; over 2 000 answers, 2.5 ms each.
        assert_eq!(per_request_ms(0.5, 10.0, 2000), Some(2.5));
        assert_eq!(
            per_request_ms(0.5, 10.0, 0),
            None,
            "no answer: unknown, never 0"
        );
    }
}
