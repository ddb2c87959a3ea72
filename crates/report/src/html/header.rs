//! The page's header: which run this is, whether it completed, on what machine and with which
//! tools, and links to the run's other files.

use std::fmt::Write as _;

use crate::row::{num, MISSING};
use crate::{RUN_JSON, STEPS_CSV};
use loadgen_model::result::{CampaignResult, RunStatus};

use super::escape::esc;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    let _ = writeln!(
        h,
        "<header>\n<h1>Capacity report: {}</h1>",
        esc(&r.scenario.name)
    );
    let (class, word) = match r.status {
        RunStatus::Running => (
            "interrupted",
            "still marked RUNNING — the process was killed or is still running; partial results",
        ),
        RunStatus::Completed => ("completed", "completed"),
        RunStatus::Interrupted => ("interrupted", "INTERRUPTED — partial results"),
        RunStatus::Failed => ("failed", "FAILED — partial results"),
    };
    let _ = write!(
        h,
        "<p><span class=\"status status-{class}\">Run {word}</span>"
    );
    if let Some(e) = &r.error {
        let _ = write!(h, " <strong>Error:</strong> {}", esc(e));
    }
    h.push_str("</p>\n<dl class=\"meta\">\n");
    let m = &r.machine;
    let opt = |v: Option<String>| v.unwrap_or_else(|| MISSING.to_string());
    let mut components = String::new();
    for (k, v) in &r.tool.components {
        let _ = write!(components, ", {k} {v}");
    }
    let items: Vec<(&str, String)> = vec![
        (
            "Scenario",
            format!("{} ({})", r.scenario.name, r.scenario.path),
        ),
        ("Scenario sha256", r.scenario.sha256.clone()),
        ("Started", r.started_at.clone()),
        ("Ended", opt(r.ended_at.clone())),
        ("Time scale", num(r.time_scale, 3)),
        ("Host", opt(m.hostname.clone())),
        ("CPUs", opt(m.cpus.map(|c| c.to_string()))),
        ("Kernel", opt(m.kernel.clone())),
        ("cgroup mode", opt(m.cgroup_mode.clone())),
        (
            "Memory",
            opt(m
                .memory_bytes
                .map(|b| format!("{} GiB", num(b as f64 / 1073741824.0, 1)))),
        ),
        (
            "Tools",
            format!("{} {}{}", r.tool.name, r.tool.version, components),
        ),
    ];
    for (k, v) in items {
        let _ = writeln!(h, "<dt>{k}</dt><dd>{}</dd>", esc(&v));
    }
    let _ = writeln!(
        h,
        "</dl>\n<p>Files of this run: <a href=\"{RUN_JSON}\">{RUN_JSON}</a> (every measurement) · \
         <a href=\"{STEPS_CSV}\">{STEPS_CSV}</a> (one row per step)</p>\n</header>"
    );
}
