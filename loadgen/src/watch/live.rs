//! The live page's state: a subscriber of the campaign's event stream ([`LivePage::sink`])
//! that keeps what a browser shows while the run lasts — the plan with the current step
//! marked, the current step's per-second rates and p99, every finished step's row and verdict,
//! the search's probe verdicts and the run's findings — and answers the page ([`PAGE`]), its
//! state as JSON (`/state.json`, polled) and, once written, the run's `report.html` and
//! `run.json`. Memory is bounded: at most [`MAX_SECONDS`] points, [`MAX_ROWS`] rows,
//! [`MAX_FINDINGS`] findings (what is cut is counted).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::server::{Handler, Reply};
use crate::campaign::{Event, Events, LoadShape, PlannedStep};
use loadgen_engine::progress::LiveSnapshot;
use loadgen_model::result::{RunStatus, StepResult};

/// The page: one self-contained HTML file (styles, script and charts inline; no asset is
/// fetched from anywhere but this server's `/state.json`).
pub const PAGE: &str = include_str!("live.html");
/// Per-second points kept of the current step (ten minutes).
pub const MAX_SECONDS: usize = 600;
/// Finished steps and probes kept (the oldest go first).
pub const MAX_ROWS: usize = 2000;
/// Findings kept (the oldest go first).
pub const MAX_FINDINGS: usize = 500;

/// What the page shows, as `/state.json`. `seq` grows with every change.
#[derive(Debug, Default, Serialize)]
struct State {
    seq: u64,
    scenario: Option<String>,
    /// `running`, then the run's final status.
    status: String,
    ended: bool,
    plan: Vec<PlanRow>,
    searches: usize,
    current: Option<Current>,
    finished: VecDeque<Row>,
    rows_dropped: u64,
    findings: VecDeque<FindingRow>,
    findings_dropped: u64,
    /// Where the run's files go (a run; not an ad-hoc attack).
    #[serde(skip)]
    out_dir: Option<PathBuf>,
    /// Links the page offers once they exist (`report.html`, `run.json`).
    files: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct PlanRow {
    step: String,
    rate_rps: f64,
    duration_s: f64,
    replicas: u32,
    cpu_limit_cores: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Current {
    step: String,
    /// A probe of a capacity search (not in the plan's list).
    probe: bool,
    rate_rps: f64,
    duration_s: f64,
    replicas: u32,
    cpu_limit_cores: Option<f64>,
    running: bool,
    elapsed_s: f64,
    sent: u64,
    ok: u64,
    failed: u64,
    dropped: u64,
    in_flight: u64,
    connections: u64,
    p99_ms: Option<f64>,
    seconds: VecDeque<Second>,
    #[serde(skip)]
    mark: Option<LiveSnapshot>,
}

/// One second of the current step: rates over it and the p99 of roughly its answers.
#[derive(Debug, Clone, Serialize)]
struct Second {
    t_s: f64,
    sent_rps: f64,
    ok_rps: f64,
    failed_rps: f64,
    dropped_rps: f64,
    p99_ms: Option<f64>,
}

/// A finished step or probe as run.json saved it.
#[derive(Debug, Serialize)]
struct Row {
    step: String,
    rate_rps: f64,
    intended: u64,
    sent: u64,
    ok: u64,
    failed: u64,
    dropped: u64,
    success_ratio: Option<f64>,
    counted_ratio: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    /// `valid`, `invalid` (with `reason`), or `failed` (could not run); a probe's SLO verdict
    /// comes in `slo`.
    verdict: &'static str,
    reason: Option<String>,
    slo: Option<String>,
}

#[derive(Debug, Serialize)]
struct FindingRow {
    severity: String,
    check: String,
    step: Option<String>,
    message: String,
}

/// The live page's state, shared by the event sink and the server's handler.
#[derive(Debug)]
pub struct LivePage {
    state: Mutex<State>,
}

impl LivePage {
    pub fn new() -> Arc<LivePage> {
        Arc::new(LivePage {
            state: Mutex::new(State {
                status: "starting".into(),
                ..State::default()
            }),
        })
    }

    /// The sink that keeps the page's state.
    pub fn sink(self: &Arc<Self>) -> Events {
        let me = self.clone();
        Events::new(move |e| {
            let mut s = me.lock();
            if s.apply(e) {
                s.seq += 1;
            }
        })
    }

    /// The run's files are written: the page may link them.
    pub fn files_written(&self) {
        let mut s = self.lock();
        s.files = vec!["report.html", "run.json"];
        s.seq += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state as the page reads it.
    pub fn state_json(&self) -> String {
        serde_json::to_string(&*self.lock()).unwrap_or_else(|_| "{}".into())
    }

    /// The server's handler: `/`, `/state.json`, and the run's files once written.
    pub fn handler(self: &Arc<Self>) -> Handler {
        let me = self.clone();
        Arc::new(move |path: &str| match path {
            "/" | "/index.html" => Reply::ok("text/html; charset=utf-8", PAGE),
            "/state.json" => Reply::ok("application/json", me.state_json()),
            "/report.html" => me.file("report.html", "text/html; charset=utf-8"),
            "/run.json" => me.file("run.json", "application/json"),
            _ => Reply::not_found(),
        })
    }

    /// One of the run's own files (fixed names, never a path from the request).
    fn file(&self, name: &'static str, content_type: &'static str) -> Reply {
        let dir = {
            let s = self.lock();
            if !s.files.contains(&name) {
                return Reply::not_found();
            }
            s.out_dir.clone()
        };
        match dir.and_then(|d| std::fs::read(d.join(name)).ok()) {
            Some(bytes) => Reply::ok(content_type, bytes),
            None => Reply::not_found(),
        }
    }
}

impl State {
    /// Takes in one event; false when the page has nothing new to show.
    fn apply(&mut self, e: &Event) -> bool {
        match e {
            Event::RunStarted {
                scenario,
                out_dir,
                steps,
                searches,
            } => {
                self.scenario = Some(scenario.clone());
                self.out_dir = out_dir.clone();
                self.plan = steps.iter().map(plan_row).collect();
                self.searches = *searches;
                self.status = "running".into();
            }
            Event::StepStarted { .. } | Event::ProbeStarted { .. } => {
                self.current = e.load_shape().map(Current::new);
            }
            Event::Progress { live, .. } => match &mut self.current {
                Some(c) => c.progress(live),
                None => return false,
            },
            Event::AttackEnded { last, .. } => {
                if let Some(c) = &mut self.current {
                    c.progress(last);
                    c.running = false;
                }
            }
            Event::StepFinished { result } => self.push_row(row(result)),
            Event::StepFailed { step, cause } => self.push_row(Row {
                verdict: "failed",
                reason: Some(cause.clone()),
                ..empty_row(step.to_string())
            }),
            Event::ProbeJudged {
                step,
                passed,
                broken,
            } => {
                let name = step.to_string();
                let Some(r) = self.finished.iter_mut().rev().find(|r| r.step == name) else {
                    return false;
                };
                r.slo = Some(if *passed {
                    "met".into()
                } else {
                    format!("not met: {}", broken.join(", "))
                });
            }
            Event::Finding { finding } => {
                if self.findings.len() == MAX_FINDINGS {
                    self.findings.pop_front();
                    self.findings_dropped += 1;
                }
                self.findings.push_back(FindingRow {
                    severity: format!("{:?}", finding.severity).to_lowercase(),
                    check: finding.check.as_str().to_string(),
                    step: finding.step.as_ref().map(|s| s.to_string()),
                    message: finding.message.clone(),
                });
            }
            Event::RunEnded { status } => {
                self.ended = true;
                self.status = status_name(*status).into();
            }
            Event::ReplicaCpu { .. } | Event::SearchEnded { .. } => return false,
        }
        true
    }

    fn push_row(&mut self, r: Row) {
        if self.finished.len() == MAX_ROWS {
            self.finished.pop_front();
            self.rows_dropped += 1;
        }
        self.finished.push_back(r);
    }
}

impl Current {
    fn new(shape: LoadShape<'_>) -> Current {
        Current {
            step: shape.step.to_string(),
            probe: shape.probe,
            rate_rps: shape.rate_rps,
            duration_s: shape.duration.as_secs_f64(),
            replicas: shape.replicas,
            cpu_limit_cores: shape.cpu_limit_cores,
            running: true,
            elapsed_s: 0.0,
            sent: 0,
            ok: 0,
            failed: 0,
            dropped: 0,
            in_flight: 0,
            connections: 0,
            p99_ms: None,
            seconds: VecDeque::new(),
            mark: None,
        }
    }

    /// A reading: the counters now, and a point each time a whole second has passed since the
    /// last one (rates over the real interval, so a late tick does not make a spike).
    fn progress(&mut self, live: &LiveSnapshot) {
        self.elapsed_s = live.elapsed.as_secs_f64();
        (self.sent, self.ok, self.failed, self.dropped) =
            (live.sent, live.ok, live.failed, live.dropped);
        self.in_flight = live.in_flight;
        self.connections = live.connections_open;
        self.p99_ms = live.recent_p99_ms;
        let mark = self.mark.unwrap_or_default();
        let dt = (live.elapsed.saturating_sub(mark.elapsed)).as_secs_f64();
        if dt < 1.0 {
            return;
        }
        let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / dt;
        if self.seconds.len() == MAX_SECONDS {
            self.seconds.pop_front();
        }
        self.seconds.push_back(Second {
            t_s: self.elapsed_s,
            sent_rps: rate(live.sent, mark.sent),
            ok_rps: rate(live.ok, mark.ok),
            failed_rps: rate(live.failed, mark.failed),
            dropped_rps: rate(live.dropped, mark.dropped),
            p99_ms: live.recent_p99_ms,
        });
        self.mark = Some(*live);
    }
}

fn plan_row(p: &PlannedStep) -> PlanRow {
    PlanRow {
        step: p.step.to_string(),
        rate_rps: p.rate_rps,
        duration_s: p.duration.as_secs_f64(),
        replicas: p.replicas,
        cpu_limit_cores: p.cpu_limit_cores,
    }
}

fn empty_row(step: String) -> Row {
    Row {
        step,
        rate_rps: 0.0,
        intended: 0,
        sent: 0,
        ok: 0,
        failed: 0,
        dropped: 0,
        success_ratio: None,
        counted_ratio: None,
        p50_ms: None,
        p99_ms: None,
        verdict: "failed",
        reason: None,
        slo: None,
    }
}

fn row(r: &StepResult) -> Row {
    Row {
        rate_rps: r.rate_rps,
        intended: r.intended,
        sent: r.sent,
        ok: r.ok,
        failed: r.failed,
        dropped: r.dropped,
        success_ratio: r.success_ratio,
        counted_ratio: r.counted_ratio,
        p50_ms: r.latency_ms.p50,
        p99_ms: r.latency_ms.p99,
        verdict: if r.valid { "valid" } else { "invalid" },
        reason: r.invalid_reason.clone(),
        ..empty_row(r.id().to_string())
    }
}

fn status_name(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Completed => "completed",
        RunStatus::Interrupted => "interrupted",
        RunStatus::Failed => "failed",
    }
}
