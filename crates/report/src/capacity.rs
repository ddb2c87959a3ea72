//! Safe capacity: per configuration (replicas × CPU limit × store), the highest offered rate at
//! which a valid step had at least [`SAFE_RATIO`] of its requests counted, and the lowest rate
//! that fell short — the bracket the knee lies in. This is the report's verdict, the answer to
//! TD4's "about 170 clicks/s".

use loadgen_model::result::CampaignResult;

use super::row::{configuration_label, num, rows, StepRow};

/// Share of intended requests that must be counted for a rate to be called safe.
pub const SAFE_RATIO: f64 = 0.99;

/// Which ratio judged the steps of a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The service's own counter (counter delta / intended), as TD4 did.
    Counted,
    /// The client's 2xx share (ok / intended): used only for steps whose counter was not read.
    ClientOk,
    /// Some steps by the counter, some by the client (counter unread on those).
    Mixed,
}

/// The verdict for one configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    pub replicas: Option<u32>,
    pub cpu_limit_cores: Option<f64>,
    pub store: Option<String>,
    /// Highest rate of a valid, uninterrupted step with ratio ≥ [`SAFE_RATIO`].
    pub safe_rate_rps: Option<f64>,
    pub safe_step: Option<String>,
    /// Lowest rate of a valid, uninterrupted step with ratio < [`SAFE_RATIO`].
    pub failed_rate_rps: Option<f64>,
    pub failed_step: Option<String>,
    /// What the probes saw at the lowest failing step (see [`evidence`]).
    pub failed_evidence: Option<String>,
    /// Lowest rate of a step whose target crashed (a replica or its store exited): not a
    /// capacity limit, and said so.
    pub crashed_rate_rps: Option<f64>,
    pub crashed_step: Option<String>,
    /// Which process exited, how and when.
    pub crash: Option<String>,
    pub basis: Option<Basis>,
    /// Steps judged (valid, not interrupted, with a ratio).
    pub judged_steps: usize,
    /// Steps of this configuration left out: invalid, interrupted, or with no ratio at all.
    pub excluded_steps: usize,
}

impl Capacity {
    /// "1 replica, 1 core, memory".
    pub fn label(&self) -> String {
        configuration_label(self.replicas, self.cpu_limit_cores, self.store.as_deref())
    }

    /// True when a higher rate passed than one that failed: the result is noisy.
    pub fn non_monotonic(&self) -> bool {
        matches!((self.safe_rate_rps, self.failed_rate_rps), (Some(s), Some(f)) if s > f)
    }

    /// One sentence, e.g. "1 replica, 1 core, memory: safe capacity ≈ 180 req/s (counted ≥ 99 %);
    /// knee between 180 and 200 req/s".
    pub fn sentence(&self) -> String {
        let basis = match self.basis {
            Some(Basis::Counted) | None => "counted ≥ 99 %",
            Some(Basis::ClientOk) => "client ok ≥ 99 %, counter not read",
            Some(Basis::Mixed) => "counted ≥ 99 %, client ok where the counter was not read",
        };
        let rate = |r: f64| num(r, 0);
        let mut s = format!("{}: ", self.label());
        match (self.safe_rate_rps, self.failed_rate_rps) {
            (None, None) => s.push_str("no valid step to judge"),
            (Some(ok), None) => s.push_str(&format!(
                "safe capacity ≥ {} req/s ({basis}); no tested rate failed",
                rate(ok)
            )),
            (None, Some(bad)) => s.push_str(&format!(
                "no tested rate was safe ({basis}); already short at {} req/s",
                rate(bad)
            )),
            (Some(ok), Some(bad)) if ok < bad => s.push_str(&format!(
                "safe capacity ≈ {} req/s ({basis}); knee between {} and {} req/s",
                rate(ok),
                rate(ok),
                rate(bad)
            )),
            (Some(ok), Some(bad)) => s.push_str(&format!(
                "safe capacity ≈ {} req/s ({basis}), but {} req/s already fell short: \
                 not monotonic, repeat the steps",
                rate(ok),
                rate(bad)
            )),
        }
        if let (Some(rate_rps), Some(step)) = (self.crashed_rate_rps, &self.crashed_step) {
            let how = self
                .crash
                .as_deref()
                .unwrap_or("a process of the target exited");
            s.push_str(&format!(
                "; the configuration crashed at {} req/s ({step}: {how}) — a crash, not a \
                 capacity limit",
                rate(rate_rps)
            ));
        }
        if self.excluded_steps > 0 {
            s.push_str(&format!(
                " [{} step(s) not judged: invalid, interrupted or unmeasured]",
                self.excluded_steps
            ));
        }
        s
    }
}

/// The verdict per configuration over every step of the run, configurations in order of first
/// appearance.
pub fn safe_capacity(result: &CampaignResult) -> Vec<Capacity> {
    for_rows(&rows(result))
}

/// The verdict per configuration over the given rows (e.g. one campaign's).
pub fn for_rows(rows: &[StepRow]) -> Vec<Capacity> {
    let mut out: Vec<Capacity> = Vec::new();
    for r in rows {
        let idx = match out.iter().position(|c| {
            c.replicas == r.replicas && c.cpu_limit_cores == r.cpu_limit_cores && c.store == r.store
        }) {
            Some(i) => i,
            None => {
                out.push(Capacity {
                    replicas: r.replicas,
                    cpu_limit_cores: r.cpu_limit_cores,
                    store: r.store.clone(),
                    safe_rate_rps: None,
                    safe_step: None,
                    failed_rate_rps: None,
                    failed_step: None,
                    failed_evidence: None,
                    crashed_rate_rps: None,
                    crashed_step: None,
                    crash: None,
                    basis: None,
                    judged_steps: 0,
                    excluded_steps: 0,
                });
                out.len() - 1
            }
        };
        let cap = &mut out[idx];
        if r.target_failed {
            // Not counted in `excluded_steps`: the crash has a sentence of its own.
            if cap.crashed_rate_rps.is_none_or(|c| r.rate_rps < c) {
                cap.crashed_rate_rps = Some(r.rate_rps);
                cap.crashed_step = Some(r.key());
                cap.crash = r.target_failure.clone();
            }
            continue;
        }
        // The counter is what TD4 judged by; the client's view stands in only when it is all
        // there is, and the verdict says so.
        let (pct, basis) = match (r.counted_pct, r.client_ok_pct) {
            (Some(c), _) => (c, Basis::Counted),
            (None, Some(ok)) => (ok, Basis::ClientOk),
            (None, None) => {
                cap.excluded_steps += 1;
                continue;
            }
        };
        if !r.valid || r.interrupted {
            cap.excluded_steps += 1;
            continue;
        }
        cap.judged_steps += 1;
        cap.basis = Some(match cap.basis {
            None => basis,
            Some(b) if b == basis => b,
            Some(_) => Basis::Mixed,
        });
        // The tolerance keeps a ratio of exactly 0.99 safe despite the ×100 of the row.
        if pct + 1e-9 >= SAFE_RATIO * 100.0 {
            if cap.safe_rate_rps.is_none_or(|s| r.rate_rps > s) {
                cap.safe_rate_rps = Some(r.rate_rps);
                cap.safe_step = Some(r.key());
            }
        } else if cap.failed_rate_rps.is_none_or(|f| r.rate_rps < f) {
            cap.failed_rate_rps = Some(r.rate_rps);
            cap.failed_step = Some(r.key());
            cap.failed_evidence = Some(evidence(r));
        }
    }
    out
}

/// The measured facts about a step that bear on why it fell short — counted vs answered, CPU
/// against the limit, throttling, the spread over replicas, the machine, the generator — without
/// interpretation (the checks' findings interpret). Unmeasured facts are left out, not shown as 0.
pub fn evidence(r: &StepRow) -> String {
    use super::row::TABLE_LIST;
    let mut parts = Vec::new();
    if let Some(c) = r.counted_cell() {
        parts.push(format!("counted {c} %"));
    }
    if let Some(ok) = r.client_ok_cell() {
        parts.push(format!("client ok {ok} %"));
    }
    if let Some(cpu) = r.cpu_per_replica_cell(TABLE_LIST) {
        let limit = match r.cpu_limit_cell().as_deref() {
            Some("none") | None => "no limit".to_string(),
            Some(l) => format!("limit {l}"),
        };
        parts.push(format!("CPU {cpu} cores per replica ({limit})"));
    }
    if let Some(t) = r.throttled_cell(TABLE_LIST) {
        parts.push(format!("throttled {t} %"));
    }
    if let Some(req) = r.requests_per_replica_cell(TABLE_LIST) {
        if r.requests_per_replica.len() > 1 {
            parts.push(format!("requests per replica {req}"));
        }
    }
    if let Some(n) = r.node_cores_cell() {
        parts.push(format!("machine busy {n} cores"));
    }
    if let Some(a) = r.achieved_cell() {
        parts.push(format!("generator sent {a} req/s"));
    }
    if r.dropped > 0 {
        parts.push(format!("{} requests dropped by the generator", r.dropped));
    }
    if let Some(p) = r.p99_cell() {
        parts.push(format!("p99 {p} ms"));
    }
    format!(
        "at {} ({} req/s): {}",
        r.key(),
        r.rate_cell(),
        parts.join(", ")
    )
}
