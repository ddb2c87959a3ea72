//! The campaign's events on the terminal (stderr): a line when a step starts and ends, a live
//! progress line redrawn in place while it runs, the search's probes and verdicts, and every
//! finding recorded about the run as a whole. Only this module prints a run's progress.

use std::io::Write;

use loadgen::campaign::{Event, Events};
use loadgen_engine::progress::progress_line;
use loadgen_model::result::StepResult;

/// A sink that renders each event on stderr; the live progress line only when `draw_progress`
/// (stderr is a terminal), since progress events are also emitted for other watchers.
pub fn terminal(draw_progress: bool) -> Events {
    Events::new(move |e| {
        let progress = matches!(e, Event::Progress { .. } | Event::AttackEnded { .. });
        if progress && !draw_progress {
            return;
        }
        if let Some(text) = render(e) {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(text.as_bytes());
        }
    })
}

/// What the terminal shows for `event` (with its line ending or carriage return); `None`
/// for an event the terminal does not show.
pub fn render(event: &Event) -> Option<String> {
    const CLEAR: &str = "\r\x1b[2K";
    Some(match event {
        Event::StepStarted {
            index,
            total,
            step,
            rate_rps,
            duration,
            replicas,
            cpu_limit_cores,
        } => format!(
            "[{}/{total}] {step}: {rate_rps} rps for {:.1} s, {replicas} replica(s), cpu limit {}\n",
            index + 1,
            duration.as_secs_f64(),
            cpu_limit_cores.map_or_else(|| "none".into(), |c| format!("{c} core")),
        ),
        Event::Progress { live, total, .. } => {
            format!("{CLEAR}    {}", progress_line(live, *total))
        }
        Event::AttackEnded { .. } => CLEAR.to_string(),
        Event::StepFinished { result } => format!("    {}\n", one_line(result)),
        Event::StepFailed { cause, .. } => format!("    step failed: {cause}\n"),
        Event::Finding { finding } => format!("    {}\n", finding.message),
        Event::ProbeStarted {
            campaign,
            configuration,
            index,
            worst_case,
            kind,
            step,
            rate_rps,
            duration,
            ..
        } => format!(
            "[search {campaign} {configuration} {}/≤{worst_case} {}] {step}: {rate_rps} rps for {:.1} s\n",
            index + 1,
            kind.as_str(),
            duration.as_secs_f64()
        ),
        Event::ProbeJudged { passed: true, .. } => "    SLO met\n".to_string(),
        Event::ProbeJudged { broken, .. } => format!("    SLO not met: {}\n", broken.join(", ")),
        Event::SearchEnded {
            campaign,
            configuration,
            ending,
        } => format!("    {campaign} {configuration}: {}\n", ending.as_str()),
        Event::RunEnded { .. } | Event::RunStarted { .. } | Event::ReplicaCpu { .. } => {
            return None
        }
    })
}

/// A one-line summary of a finished step.
fn one_line(s: &StepResult) -> String {
    let pct = |r: Option<f64>| r.map_or("—".to_string(), |r| format!("{:.1} %", r * 100.0));
    format!(
        "intended {} sent {} ok {} ({}) counted {} p99 {}{}",
        s.intended,
        s.sent,
        s.ok,
        pct(s.success_ratio),
        pct(s.counted_ratio),
        s.latency_ms
            .p99
            .map_or("—".to_string(), |p| format!("{p:.1} ms")),
        if s.valid { "" } else { "  [INVALID]" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use loadgen_model::step_id::StepId;
    use std::time::Duration;

    #[test]
    fn a_step_start_names_its_configuration_and_a_failed_probe_its_broken_bounds() {
        let start = render(&Event::StepStarted {
            index: 0,
            total: 3,
            step: StepId::parse("A/s1"),
            rate_rps: 250.0,
            duration: Duration::from_secs(10),
            replicas: 2,
            cpu_limit_cores: Some(1.5),
        })
        .unwrap();
        assert_eq!(
            start,
            "[1/3] A/s1: 250 rps for 10.0 s, 2 replica(s), cpu limit 1.5 core\n"
        );
        let judged = render(&Event::ProbeJudged {
            step: StepId::parse("A/p"),
            passed: false,
            broken: vec!["p99 612 ms > 500 ms".into()],
        })
        .unwrap();
        assert_eq!(judged, "    SLO not met: p99 612 ms > 500 ms\n");
    }
}
