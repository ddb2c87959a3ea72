//! The campaign's events as JSON log lines (`--log-format json`): the same stream the terminal
//! renders (`cli/events.rs`), one `loadgen_logline` line per event with the terminal's words as
//! its message, a snake_case `event` kind, the `step`, and the event's numbers as fields
//! (unmeasured ones `null`, never 0). Progress is thinned to one line per second per step: a
//! log is kept, a terminal line is redrawn. docs/logs.md lists every kind and field.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use loadgen::campaign::{Event, Events};
use loadgen_engine::progress::LiveSnapshot;
use loadgen_logline::{render_line, Level};
use loadgen_model::result::{RunStatus, Severity, StepResult};
use loadgen_model::step_id::StepId;
use serde_json::{json, Map, Value};

use super::log_format::{self, plain, write_line};

/// The `target` of event lines: the module the events come from.
const TARGET: &str = "loadgen::campaign";
/// Least time between two progress lines of one step.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// The sink of the chosen format: JSON lines, or the terminal's rendering (its progress line
/// drawn when `draw_progress`).
pub fn sink(draw_progress: bool) -> Events {
    if log_format::json() {
        json_lines()
    } else {
        super::events::terminal(draw_progress)
    }
}

/// A sink writing each event as one JSON line on stderr.
pub fn json_lines() -> Events {
    json_lines_with(Map::new())
}

/// [`json_lines`] with `extra` fields on every line (a `compare` side).
pub fn json_lines_with(extra: Map<String, Value>) -> Events {
    let throttle = Mutex::new(Throttle::default());
    Events::new(move |event| {
        let mut throttle = throttle.lock().unwrap_or_else(|p| p.into_inner());
        if let Event::AttackEnded { step, .. } = event {
            throttle.forget(step);
        }
        let Some(line) = render_at(event, SystemTime::now(), &extra) else {
            return;
        };
        if let Event::Progress { step, .. } = event {
            if !throttle.admit(step, Instant::now()) {
                return;
            }
        }
        write_line(line);
    })
}

/// One event's JSON line (without its line ending); `None` for an event with nothing to log
/// (the end of an attack, which only tells a terminal to clear its progress line, and a
/// progress reading taken before the attack started).
#[cfg(test)]
pub fn render_json(event: &Event) -> Option<String> {
    render_at(event, SystemTime::now(), &Map::new())
}

fn render_at(event: &Event, time: SystemTime, extra: &Map<String, Value>) -> Option<String> {
    let (level, kind, fields) = describe(event)?;
    let message = match super::events::render(event) {
        Some(text) => plain(&text),
        None => fallback_message(event),
    };
    let mut map = object(fields);
    map.insert("event".into(), Value::from(kind));
    for (k, v) in extra {
        map.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Some(render_line(time, level, TARGET, &message, map))
}

/// The words of an event the terminal does not show.
fn fallback_message(event: &Event) -> String {
    match event {
        // run.json's own word for the status (its serde name).
        Event::RunEnded { status } => format!("run {}", json!(status).as_str().unwrap_or("")),
        Event::RunStarted {
            scenario, steps, ..
        } => format!("run {scenario}: {} listed step(s)", steps.len()),
        _ => String::new(),
    }
}

/// Level, kind and fields of an event; `None` for one a log has no use for.
fn describe(event: &Event) -> Option<(Level, &'static str, Value)> {
    Some(match event {
        Event::StepStarted { .. } => (Level::Info, "step_started", load_started(event)),
        // Before the engine's first reading there is nothing to say.
        Event::Progress { live, .. } if live.generation == 0 => return None,
        Event::Progress {
            step, live, total, ..
        } => (Level::Info, "progress", progress(step, live, *total)),
        // An attack's end only tells a terminal to clear its line; the replicas' CPU comes
        // with the step's result.
        Event::AttackEnded { .. } | Event::ReplicaCpu { .. } => return None,
        Event::RunStarted {
            scenario,
            out_dir,
            steps,
            searches,
        } => (
            Level::Info,
            "run_started",
            json!({
                "scenario": scenario, "out_dir": out_dir, "steps": steps.len(),
                "searches": searches,
            }),
        ),
        Event::StepFinished { result } => {
            (step_level(result), "step_finished", step_finished(result))
        }
        Event::StepFailed { step, cause } => (
            Level::Error,
            "step_failed",
            json!({ "step": step.to_string(), "cause": cause }),
        ),
        Event::Finding { finding } => (
            severity_level(finding.severity),
            "finding",
            json!({
                "step": finding.step.as_ref().map(ToString::to_string),
                "check": finding.check.as_str(), "severity": finding.severity,
            }),
        ),
        Event::ProbeStarted { .. } => (Level::Info, "probe_started", load_started(event)),
        Event::ProbeJudged {
            step,
            passed,
            broken,
        } => (
            Level::Info,
            "probe_judged",
            json!({ "step": step.to_string(), "passed": passed, "broken": broken }),
        ),
        Event::SearchEnded {
            campaign,
            configuration,
            ending,
        } => (
            Level::Info,
            "search_ended",
            json!({
                "campaign": campaign, "configuration": configuration, "ending": ending.as_str(),
            }),
        ),
        Event::RunEnded { status } => {
            let fields = json!({ "status": status });
            (status_level(*status), "run_ended", fields)
        }
    })
    .map(|(level, kind, fields)| (level, kind, drop_absent_step(fields)))
}

/// The fields of a step's or a probe's start: the load's shape (one reading of it,
/// [`Event::load_shape`]) and what only a step (`number`, `total`) or a probe (its search and
/// place in it) has; `null` for another event.
fn load_started(event: &Event) -> Value {
    let Some(shape) = event.load_shape() else {
        return Value::Null;
    };
    let mut fields = json!({
        "step": shape.step.to_string(),
        "rate_rps": shape.rate_rps, "duration_s": shape.duration.as_secs_f64(),
        "replicas": shape.replicas, "cpu_limit_cores": shape.cpu_limit_cores,
    });
    let own = match event {
        Event::StepStarted { index, total, .. } => json!({ "number": index + 1, "total": total }),
        Event::ProbeStarted {
            campaign,
            configuration,
            index,
            worst_case,
            kind,
            ..
        } => json!({
            "campaign": campaign, "configuration": configuration,
            "probe": index + 1, "worst_case": worst_case, "kind": kind.as_str(),
        }),
        _ => Value::Null,
    };
    if let (Some(all), Value::Object(own)) = (fields.as_object_mut(), own) {
        all.extend(own);
    }
    fields
}

fn progress(step: &StepId, live: &LiveSnapshot, total: Duration) -> Value {
    let secs = live.elapsed.as_secs_f64();
    json!({
        "step": step.to_string(),
        "elapsed_s": secs, "total_s": total.as_secs_f64(),
        "sent": live.sent, "ok": live.ok, "failed": live.failed, "dropped": live.dropped,
        "in_flight": live.in_flight,
        "achieved_rps": (secs > 0.0).then(|| live.sent as f64 / secs),
        "recent_p99_ms": live.recent_p99_ms,
    })
}

/// A finished step's numbers, as run.json holds them (its `steps` entry).
fn step_finished(s: &StepResult) -> Value {
    let topology = s.topology.as_ref();
    let cpu = s.cpu.as_ref();
    json!({
        "step": s.id().to_string(),
        "rate_rps": s.rate_rps, "duration_s": s.duration_s,
        "replicas": topology.map(|t| t.replicas),
        "cpu_limit_cores": topology.and_then(|t| t.cpu_limit_cores),
        "intended": s.intended, "sent": s.sent, "ok": s.ok, "failed": s.failed,
        "dropped": s.dropped,
        "achieved_rps": s.achieved_rps,
        "success_ratio": s.success_ratio,
        "counted_ratio": s.counted_ratio,
        "counter_delta": s.counter.as_ref().and_then(|c| c.delta),
        "p50_ms": s.latency_ms.p50, "p99_ms": s.latency_ms.p99, "max_ms": s.latency_ms.max,
        "cpu_cores_used": cpu.and_then(|c| c.cores_used),
        "throttled_ratio": cpu.and_then(|c| c.throttled_ratio),
        "valid": s.valid, "invalid_reason": s.invalid_reason,
        "interrupted": s.interrupted, "target_failed": s.target_failed,
    })
}

/// A target that failed under the step is an error; a step that is no evidence otherwise
/// (invalid, cut short) a warning.
fn step_level(s: &StepResult) -> Level {
    if s.target_failed {
        Level::Error
    } else if !s.valid || s.interrupted {
        Level::Warn
    } else {
        Level::Info
    }
}

fn status_level(s: RunStatus) -> Level {
    match s {
        RunStatus::Failed => Level::Error,
        RunStatus::Interrupted => Level::Warn,
        RunStatus::Running | RunStatus::Completed => Level::Info,
    }
}

fn severity_level(s: Severity) -> Level {
    match s {
        Severity::Info => Level::Info,
        Severity::Warn => Level::Warn,
        Severity::Fail => Level::Error,
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// `step` is a stable key present only when known: a run-wide finding has none.
fn drop_absent_step(v: Value) -> Value {
    let mut m = object(v);
    if m.get("step").is_some_and(Value::is_null) {
        m.remove("step");
    }
    Value::Object(m)
}

/// At most one progress line per [`PROGRESS_EVERY`] and step, whatever the ticker's pace.
#[derive(Debug, Default)]
struct Throttle {
    last: HashMap<StepId, Instant>,
}

impl Throttle {
    fn admit(&mut self, step: &StepId, now: Instant) -> bool {
        match self.last.get(step) {
            Some(at) if now.duration_since(*at) < PROGRESS_EVERY => false,
            _ => {
                self.last.insert(step.clone(), now);
                true
            }
        }
    }

    /// The step's attack is over: its entry is no longer needed.
    fn forget(&mut self, step: &StepId) {
        self.last.remove(step);
    }
}

#[cfg(test)]
mod tests;
