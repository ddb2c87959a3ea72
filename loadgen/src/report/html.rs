//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched) that
//! answers "how much load does each configuration take, and why not more". Rendering is a pure
//! function of the `run.json`: no clock, stable order and float formatting, so the same input
//! gives byte-identical output.

use std::fmt::Write as _;

use crate::result::{CampaignResult, RunStatus, StepResult};

use super::capacity::{self, Capacity};
use super::chart::{self, BarChart, BarGroup, LineChart, Series, Stroke, TimelineChart};
use super::row::{
    by_campaign, findings_for, rows, unattached_findings, StepRow, MISSING, TABLE_LIST,
};
use super::steps_csv;
use super::table::{self, severity_word};
use super::{RUN_JSON, STEPS_CSV};

/// At most this many points per step timeline (chart and numbers); longer steps are bucketed.
pub const MAX_TIMELINE_POINTS: usize = 120;

const CSS: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:1240px;padding:0 18px 40px;color:#1a1a1a;line-height:1.45}
h1{margin:18px 0 6px;font-size:1.6em}h2{margin-top:34px;border-bottom:2px solid #0072b2;padding-bottom:3px}
h3{margin:22px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:.88em}
th,td{border:1px solid #c8c8c8;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#eef3f8}td.l,th.l{text-align:left}
tr.invalid td{background:#fde8e0}tr.interrupted td{background:#fff4d6}
tr.findings td{background:#f7f7f7;text-align:left;font-size:.95em}
ul.findings{margin:0;padding-left:18px}
.sev-fail{color:#a33a00;font-weight:600}.sev-warn{color:#8a5a00}.sev-info{color:#333}
.status{display:inline-block;padding:3px 10px;border-radius:4px;font-weight:600}
.status-completed{background:#d9efe6}.status-interrupted{background:#fff0c2}.status-failed{background:#fbd5c5}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:10px 0}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;word-break:break-all}
.verdict li{margin:6px 0;font-size:1.05em}.evidence{font-size:.85em;color:#444}
figure.chart{margin:12px 12px 12px 0;padding:8px;border:1px solid #ddd;border-radius:6px;display:inline-block;vertical-align:top;max-width:100%}
figure.chart svg{max-width:100%;height:auto;display:block}
figcaption{font-size:.9em;color:#444;max-width:760px}
details{margin:4px 0}summary{cursor:pointer;color:#0072b2}
pre.scenario{background:#f6f8fa;border:1px solid #ddd;padding:10px;overflow-x:auto;font-size:.85em}
.missing{color:#888}footer{margin-top:40px;color:#666;font-size:.85em}
";

/// Renders the whole page.
pub fn render(result: &CampaignResult) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let title = format!("loadgen report — {}", result.scenario.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    header(&mut h, result);
    verdict(&mut h, result);
    campaigns(&mut h, result);
    cross_check(&mut h, result);
    charts(&mut h, result);
    timelines(&mut h, result);
    other_findings(&mut h, result);
    scenario(&mut h, result);
    let _ = write!(
        h,
        "<footer>Rendered by {} {} from <a href=\"{RUN_JSON}\">{RUN_JSON}</a> (schema version {}). \
         Re-render with <code>loadgen report {RUN_JSON}</code>.</footer>\n</body>\n</html>\n",
        esc(&result.tool.name),
        esc(&result.tool.version),
        result.schema_version
    );
    h
}

fn header(h: &mut String, r: &CampaignResult) {
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
        ("Time scale", super::row::num(r.time_scale, 3)),
        ("Host", opt(m.hostname.clone())),
        ("CPUs", opt(m.cpus.map(|c| c.to_string()))),
        ("Kernel", opt(m.kernel.clone())),
        ("cgroup mode", opt(m.cgroup_mode.clone())),
        (
            "Memory",
            opt(m
                .memory_bytes
                .map(|b| format!("{} GiB", super::row::num(b as f64 / 1073741824.0, 1)))),
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

fn verdict(h: &mut String, r: &CampaignResult) {
    h.push_str("<section id=\"verdict\" class=\"verdict\">\n<h2>Verdict: safe capacity per configuration</h2>\n<ul>\n");
    let caps = capacity::safe_capacity(r);
    if caps.is_empty() {
        h.push_str("<li>No step in this run.</li>\n");
    }
    for c in &caps {
        let _ = writeln!(h, "<li>{}</li>", verdict_with_evidence(c));
    }
    let _ = writeln!(
        h,
        "</ul>\n<p>Safe capacity is the highest offered rate at which a valid, uninterrupted step \
         had at least {} % of its requests counted by the service's own counter (the client's 2xx \
         share stands in only where the counter was not read, and the line says so); the knee \
         lies between it and the lowest rate that fell short.</p>\n</section>",
        super::row::num(capacity::SAFE_RATIO * 100.0, 0)
    );
}

fn verdict_html(c: &Capacity) -> String {
    let s = esc(&c.sentence());
    // Bold the configuration, the part a reader scans for.
    match s.split_once(": ") {
        Some((cfg, rest)) => format!("<strong>{cfg}</strong>: {rest}"),
        None => s,
    }
}

/// The verdict with the evidence of the first failing step under it.
fn verdict_with_evidence(c: &Capacity) -> String {
    match &c.failed_evidence {
        Some(e) => format!(
            "{}<br><span class=\"evidence\">First shortfall {}</span>",
            verdict_html(c),
            esc(e)
        ),
        None => verdict_html(c),
    }
}

fn campaigns(h: &mut String, r: &CampaignResult) {
    for (campaign, rows) in by_campaign(r) {
        let name = campaign
            .as_deref()
            .unwrap_or("(steps outside any campaign)");
        let _ = writeln!(
            h,
            "<section class=\"campaign\" id=\"campaign-{}\">\n<h2>Campaign {}</h2>",
            slug(name),
            esc(name)
        );
        if let Some(d) = r
            .campaigns
            .iter()
            .find(|c| Some(&c.name) == campaign.as_ref())
            .and_then(|c| c.description.as_ref())
        {
            let _ = writeln!(h, "<p>{}</p>", esc(d));
        }
        h.push_str("<table class=\"steps\">\n<thead><tr>");
        for (i, head) in table::HEADERS.iter().enumerate() {
            let class = if i == 0 || i == table::HEADERS.len() - 1 {
                " class=\"l\""
            } else {
                ""
            };
            let _ = write!(h, "<th{class}>{}</th>", esc(head));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        let ncols = table::HEADERS.len();
        for row in &rows {
            let class = match (row.valid, row.interrupted) {
                (false, _) => " class=\"invalid\"",
                (true, true) => " class=\"interrupted\"",
                _ => "",
            };
            let _ = write!(h, "<tr{class} id=\"step-{}\">", row.index);
            let cells = table::cells(row);
            let last = cells.len() - 1;
            for (i, c) in cells.iter().enumerate() {
                let mut cls = Vec::new();
                if i == 0 || i == last {
                    cls.push("l");
                }
                if c == MISSING {
                    cls.push("missing");
                }
                let attr = if cls.is_empty() {
                    String::new()
                } else {
                    format!(" class=\"{}\"", cls.join(" "))
                };
                let _ = write!(h, "<td{attr}>{}</td>", esc(c));
            }
            h.push_str("</tr>\n");
            let notes = step_notes(r, row);
            if !notes.is_empty() {
                let _ = writeln!(
                    h,
                    "<tr class=\"findings\"><td colspan=\"{ncols}\"><ul class=\"findings\">{notes}</ul></td></tr>"
                );
            }
        }
        h.push_str("</tbody>\n</table>\n");
        let verdicts: Vec<String> = capacity::for_rows(&rows).iter().map(verdict_html).collect();
        let _ = writeln!(
            h,
            "<p><strong>Verdict:</strong> {}</p>",
            verdicts.join("; ")
        );
        all_values(h, r, &rows);
        h.push_str("</section>\n");
    }
}

/// The `<li>`s under a step: invalid reason, interruption, then every finding about it.
fn step_notes(r: &CampaignResult, row: &StepRow) -> String {
    let mut s = String::new();
    if !row.valid {
        let _ = write!(
            s,
            "<li class=\"sev-fail\"><b>invalid</b>: {}</li>",
            esc(row
                .invalid_reason
                .as_deref()
                .unwrap_or("no reason recorded"))
        );
    }
    if row.interrupted {
        s.push_str("<li class=\"sev-warn\"><b>interrupted</b>: counts cover only what ran</li>");
    }
    for f in findings_for(r, row) {
        let w = severity_word(f.severity);
        let _ = write!(
            s,
            "<li class=\"sev-{w}\"><b>{w}</b> <code>{}</code>: {}</li>",
            esc(f.check.as_str()),
            esc(&f.message)
        );
    }
    s
}

/// Every `steps.csv` column of the campaign's steps, folded away.
fn all_values(h: &mut String, r: &CampaignResult, rows: &[StepRow]) {
    h.push_str("<details><summary>All measured values (the steps.csv columns)</summary>\n<table>\n<thead><tr>");
    for (name, doc) in steps_csv::COLUMNS {
        let _ = write!(h, "<th title=\"{}\">{}</th>", esc(doc), esc(name));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for row in rows {
        h.push_str("<tr>");
        for c in steps_csv::record(r, row) {
            if c.is_empty() {
                let _ = write!(h, "<td class=\"missing\">{MISSING}</td>");
            } else {
                let _ = write!(h, "<td>{}</td>", esc(&c));
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</details>\n");
}

/// Generator, direct probes and Prometheus side by side, for steps Prometheus watched.
fn cross_check(h: &mut String, r: &CampaignResult) {
    let all = rows(r);
    let watched: Vec<&StepRow> = all
        .iter()
        .filter(|row| r.steps[row.index - 1].prometheus.is_some())
        .collect();
    h.push_str("<section id=\"cross-check\">\n<h2>Three views of each step: generator, direct probes, Prometheus</h2>\n");
    if watched.is_empty() {
        h.push_str("<p>Prometheus did not watch this run (run with <code>--prometheus</code> to add its view).</p>\n</section>\n");
        return;
    }
    h.push_str(
        "<table>\n<thead><tr><th class=\"l\" rowspan=\"2\">step</th><th colspan=\"2\">generator</th>\
         <th colspan=\"4\">direct probes</th><th colspan=\"4\">Prometheus</th></tr>\n\
         <tr><th>intended</th><th>2xx</th><th>counter delta</th><th>cgroup CPU (cores)</th>\
         <th>per replica</th><th>throttled %</th><th>counter increase</th><th>CPU (cores)</th>\
         <th>per replica</th><th>throttled %</th></tr></thead>\n<tbody>\n",
    );
    for row in &watched {
        let cells = [
            Some(row.intended.to_string()),
            Some(row.ok.to_string()),
            row.counter_delta_cell(),
            row.cpu_total_cell(),
            row.cpu_per_replica_cell(TABLE_LIST),
            row.throttled_total_cell(),
            row.prom_counter_cell(),
            row.prom_cpu_cell(),
            row.prom_cpu_per_replica_cell(TABLE_LIST),
            row.prom_throttled_cell(),
        ];
        let _ = write!(h, "<tr><td class=\"l\">{}</td>", esc(&row.key()));
        for c in cells {
            td(h, c);
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
    let rows_watched = &watched;
    let queried: Vec<(&StepRow, &std::collections::BTreeMap<String, String>)> = rows_watched
        .iter()
        .filter_map(|row| {
            let p = r.steps[row.index - 1].prometheus.as_ref()?;
            (!p.queries.is_empty()).then_some((*row, &p.queries))
        })
        .collect();
    if !queried.is_empty() {
        h.push_str(
            "<details><summary>PromQL evaluated</summary>\n<table>\n<thead><tr><th \
         class=\"l\">step</th><th class=\"l\">value</th><th \
         class=\"l\">query</th></tr></thead>\n<tbody>\n",
        );
        for (row, queries) in queried {
            for (k, q) in queries {
                let _ = writeln!(
                    h,
                    "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\"><code>{}</code></td></tr>",
                    esc(&row.key()),
                    esc(k),
                    esc(q)
                );
            }
        }
        h.push_str("</tbody>\n</table>\n</details>\n");
    }
    h.push_str("</section>\n");
}

/// The configurations of the run in capacity order, with each step's series index.
fn series_index(caps: &[Capacity], row: &StepRow) -> usize {
    caps.iter()
        .position(|c| {
            c.replicas == row.replicas
                && c.cpu_limit_cores == row.cpu_limit_cores
                && c.store == row.store
        })
        .unwrap_or(0)
}

/// Steps that may stand on a curve: valid and complete.
fn plotted(row: &StepRow) -> bool {
    row.valid && !row.interrupted
}

/// Two series per configuration, one colour each: `solid` drawn solid, `dashed` dashed.
fn paired_series(
    caps: &[Capacity],
    solid: (&str, &[Vec<(f64, f64)>]),
    dashed: (&str, &[Vec<(f64, f64)>]),
) -> Vec<Series> {
    let mut series = Vec::new();
    for (i, c) in caps.iter().enumerate() {
        for (name, points, stroke) in [
            (solid.0, solid.1, Stroke::Solid),
            (dashed.0, dashed.1, Stroke::Dashed),
        ] {
            series.push(Series {
                label: format!("{name} — {}", c.label()),
                colour: i,
                stroke,
                points: points[i].clone(),
            });
        }
    }
    series
}

fn per_config(
    caps: &[Capacity],
    all: &[StepRow],
    value: impl Fn(&StepRow) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new(); caps.len()];
    for row in all.iter().filter(|r| plotted(r)) {
        if let Some(v) = value(row) {
            out[series_index(caps, row)].push((row.rate_rps, v));
        }
    }
    for pts in &mut out {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    }
    out
}

fn charts(h: &mut String, r: &CampaignResult) {
    let all = rows(r);
    let caps = capacity::safe_capacity(r);
    h.push_str(
        "<section id=\"charts\">\n<h2>Charts</h2>\n<p>Curves join the valid, uninterrupted steps \
         of one configuration; invalid or interrupted steps are left off the curves (they are \
         marked in the tables above). Per-step bar charts number the steps as in the tables below \
         each chart.</p>\n",
    );
    let numbers_head =
        "<tr><th class=\"l\">step</th><th class=\"l\">configuration</th><th>rate (req/s)</th>";

    // 1. Counted and client-ok share vs offered rate.
    let counted = per_config(&caps, &all, |r| r.counted_pct);
    let client = per_config(&caps, &all, |r| r.client_ok_pct);
    let ratio_top = counted
        .iter()
        .chain(&client)
        .flatten()
        .map(|p| p.1 * 1.05)
        .fold(105.0, f64::max);
    let series = paired_series(&caps, ("counted", &counted), ("client ok", &client));
    let spec = LineChart {
        title: "Share of requests counted and answered OK vs offered rate".into(),
        x_label: "offered rate (req/s)".into(),
        y_label: "share of intended requests (%)".into(),
        series,
        log_y: false,
        // 100 % always in view; a counter that counted more than was sent stays in view too.
        y_range: Some((0.0, ratio_top)),
        diagonal: false,
        size: (880, 460),
    };
    figure(
        h,
        "chart-ratio",
        chart::line(&spec),
        CAPTION_RATIO,
        &numbers(&all, numbers_head, &["counted %", "client ok %"], |r| {
            vec![r.counted_cell(), r.client_ok_cell()]
        }),
    );

    // 2. Latency.
    let p50 = per_config(&caps, &all, |r| r.p50_ms.filter(|v| *v > 0.0));
    let p99 = per_config(&caps, &all, |r| r.p99_ms.filter(|v| *v > 0.0));
    let series = paired_series(&caps, ("p99", &p99), ("p50", &p50));
    let spec = LineChart {
        title: "Latency from the due time vs offered rate (log scale)".into(),
        x_label: "offered rate (req/s)".into(),
        y_label: "latency (ms, log scale)".into(),
        series,
        log_y: true,
        y_range: None,
        diagonal: false,
        size: (880, 460),
    };
    figure(
        h,
        "chart-latency",
        chart::line(&spec),
        CAPTION_LATENCY,
        &numbers(
            &all,
            numbers_head,
            &["p50 (ms)", "p99 (ms)", "max (ms)"],
            |r| vec![r.p50_cell(), r.p99_cell(), r.max_cell()],
        ),
    );

    // 3. Achieved vs offered.
    let achieved = per_config(&caps, &all, |r| r.achieved_rps);
    let mut series: Vec<Series> = caps
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            label: c.label(),
            colour: i,
            stroke: Stroke::Solid,
            points: achieved[i].clone(),
        })
        .collect();
    // Invalid steps matter most here: a generator that could not keep up is why a step is
    // invalid, so they are shown, as crosses off the curves.
    let mut invalid: Vec<(f64, f64)> = all
        .iter()
        .filter(|r| !plotted(r))
        .filter_map(|r| r.achieved_rps.map(|a| (r.rate_rps, a)))
        .collect();
    invalid.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    series.push(Series {
        label: "invalid or interrupted steps".into(),
        colour: 6,
        stroke: Stroke::Points,
        points: invalid,
    });
    let spec = LineChart {
        title: "Rate the generator achieved vs offered rate".into(),
        x_label: "offered rate (req/s)".into(),
        y_label: "achieved send rate (req/s)".into(),
        series,
        log_y: false,
        y_range: None,
        diagonal: true,
        size: (880, 460),
    };
    figure(
        h,
        "chart-achieved",
        chart::line(&spec),
        CAPTION_ACHIEVED,
        &numbers(
            &all,
            numbers_head,
            &[
                "achieved (req/s)",
                "schedule lag p99 (ms)",
                "generator CPU (cores)",
            ],
            |r| {
                vec![
                    r.achieved_cell(),
                    r.lag_p99_cell(),
                    r.generator_cores_cell(),
                ]
            },
        ),
    );

    // 4–6. Per replica, per step.
    let max_replicas = all
        .iter()
        .map(|r| {
            r.cpu_cores_per_replica
                .len()
                .max(r.requests_per_replica.len())
        })
        .max()
        .unwrap_or(0);
    let groups = |value: &dyn Fn(&StepRow, usize) -> Option<f64>| -> Vec<BarGroup> {
        (0..max_replicas)
            .map(|k| BarGroup {
                label: format!("replica {}", k + 1),
                colour: k,
                values: all.iter().map(|r| value(r, k)).collect(),
            })
            .collect()
    };
    let per_step_head = "<tr><th>#</th><th class=\"l\">step</th><th class=\"l\">configuration</th>";
    let cpu = BarChart {
        title: "CPU used per replica, per step".into(),
        x_label: "step # (see table)".into(),
        y_label: "CPU used (cores)".into(),
        categories: all.len(),
        groups: groups(&|r, k| r.cpu_cores_per_replica.get(k).copied().flatten()),
        y_max: None,
        size: (880, 400),
    };
    figure(
        h,
        "chart-cpu",
        chart::bars(&cpu),
        CAPTION_CPU,
        &per_step_numbers(
            &all,
            per_step_head,
            &[
                "CPU limit",
                "CPU used (cores, per replica)",
                "node busy (cores)",
            ],
            |r| {
                vec![
                    r.cpu_limit_cell(),
                    r.cpu_per_replica_cell(TABLE_LIST),
                    r.node_cores_cell(),
                ]
            },
        ),
    );
    let thr = BarChart {
        title: "Throttled share of CFS periods per replica, per step".into(),
        x_label: "step # (see table)".into(),
        y_label: "throttled periods (%)".into(),
        categories: all.len(),
        groups: groups(&|r, k| r.throttled_pct_per_replica.get(k).copied().flatten()),
        y_max: Some(100.0),
        size: (880, 400),
    };
    figure(
        h,
        "chart-throttled",
        chart::bars(&thr),
        CAPTION_THROTTLED,
        &per_step_numbers(&all, per_step_head, &["throttled % (per replica)"], |r| {
            vec![r.throttled_cell(TABLE_LIST)]
        }),
    );
    let share = |r: &StepRow, k: usize| -> Option<f64> {
        let total: u64 = r.requests_per_replica.iter().flatten().sum();
        let v = r.requests_per_replica.get(k).copied().flatten()?;
        (total > 0).then(|| v as f64 * 100.0 / total as f64)
    };
    let spread = BarChart {
        title: "Share of requests answered by each replica, per step".into(),
        x_label: "step # (see table)".into(),
        y_label: "share of the step's requests (%)".into(),
        categories: all.len(),
        groups: groups(&share),
        y_max: Some(100.0),
        size: (880, 400),
    };
    figure(
        h,
        "chart-spread",
        chart::bars(&spread),
        CAPTION_SPREAD,
        &per_step_numbers(
            &all,
            per_step_head,
            &["requests per replica", "clicks per replica"],
            |r| {
                vec![
                    r.requests_per_replica_cell(TABLE_LIST),
                    r.clicks_per_replica_cell(TABLE_LIST),
                ]
            },
        ),
    );
    h.push_str("</section>\n");
}

fn timelines(h: &mut String, r: &CampaignResult) {
    h.push_str(
        "<section id=\"timelines\">\n<h2>Step timelines</h2>\n<p>Per second of each step, by due \
         time: requests sent, answered OK, failed, and dropped by the generator when there were \
         drops (left axis), and the p99 latency of that second (right axis, black).</p>\n",
    );
    for row in rows(r) {
        let step = &r.steps[row.index - 1];
        let id = format!("chart-timeline-{}", row.index);
        if step.timeline.is_empty() {
            let _ = writeln!(
                h,
                "<p id=\"{id}\">Step {} {}: no timeline recorded.</p>",
                row.index,
                esc(&row.key())
            );
            continue;
        }
        let tl = downsample(step);
        let spec = TimelineChart {
            title: format!(
                "#{} {} — {} req/s, {}",
                row.index,
                row.key(),
                row.rate_cell(),
                row.configuration_label()
            ),
            t_s: tl.iter().map(|p| p.t_s).collect(),
            rates: vec![
                (
                    "sent".into(),
                    0,
                    tl.iter().map(|p| p.sent).collect::<Vec<f64>>(),
                ),
                ("ok".into(), 2, tl.iter().map(|p| p.ok).collect()),
                ("failed".into(), 3, tl.iter().map(|p| p.failed).collect()),
            ]
            .into_iter()
            .chain(
                // Drops are drawn only when there were any, to keep quiet charts quiet.
                tl.iter()
                    .any(|p| p.dropped > 0.0)
                    .then(|| ("dropped".into(), 4, tl.iter().map(|p| p.dropped).collect())),
            )
            .collect(),
            p99_ms: tl.iter().map(|p| p.p99_ms).collect(),
            size: (560, 280),
        };
        let bucket = tl.first().map(|p| p.bucket_s).unwrap_or(1);
        let caption = if bucket > 1 {
            format!("Averaged over {bucket} s buckets (p99: the worst second of each bucket).")
        } else {
            String::new()
        };
        let mut table = String::from("<table><thead><tr><th>t (s)</th><th>sent/s</th><th>ok/s</th><th>failed/s</th><th>dropped/s</th><th>p99 (ms)</th></tr></thead><tbody>\n");
        for p in &tl {
            let _ = write!(
                table,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                super::row::num(p.t_s, 0),
                super::row::num(p.sent, 1),
                super::row::num(p.ok, 1),
                super::row::num(p.failed, 1),
                super::row::num(p.dropped, 1)
            );
            td(&mut table, p.p99_ms.map(|v| super::row::num(v, 1)));
            table.push_str("</tr>\n");
        }
        table.push_str("</tbody></table>");
        figure(h, &id, chart::timeline(&spec), &caption, &table);
    }
    h.push_str("</section>\n");
}

/// One point of a (possibly bucketed) timeline, rates per second.
struct TimelineBucket {
    t_s: f64,
    bucket_s: usize,
    sent: f64,
    ok: f64,
    failed: f64,
    dropped: f64,
    p99_ms: Option<f64>,
}

/// Buckets a long timeline to at most [`MAX_TIMELINE_POINTS`] points: counts become per-second
/// averages, p99 the worst second (percentiles cannot be averaged).
fn downsample(step: &StepResult) -> Vec<TimelineBucket> {
    let n = step.timeline.len();
    let k = n.div_ceil(MAX_TIMELINE_POINTS).max(1);
    step.timeline
        .chunks(k)
        .map(|c| {
            let len = c.len() as f64;
            TimelineBucket {
                t_s: f64::from(c[0].t_s),
                bucket_s: k,
                sent: c.iter().map(|p| p.sent as f64).sum::<f64>() / len,
                ok: c.iter().map(|p| p.ok as f64).sum::<f64>() / len,
                failed: c.iter().map(|p| p.failed as f64).sum::<f64>() / len,
                dropped: c.iter().map(|p| p.dropped as f64).sum::<f64>() / len,
                p99_ms: c.iter().filter_map(|p| p.p99_ms).reduce(f64::max),
            }
        })
        .collect()
}

fn other_findings(h: &mut String, r: &CampaignResult) {
    let rest = unattached_findings(r);
    if rest.is_empty() {
        return;
    }
    h.push_str("<section id=\"findings\">\n<h2>Run findings</h2>\n<ul class=\"findings\">\n");
    let mut sorted = rest;
    // Worst first, then in recorded order (stable sort).
    sorted.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for f in sorted {
        let w = severity_word(f.severity);
        let about = f
            .step
            .as_ref()
            .map(|s| format!(" (step {})", esc(&s.to_string())))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<li class=\"sev-{w}\"><b>{w}</b> <code>{}</code>{about}: {}</li>",
            esc(f.check.as_str()),
            esc(&f.message)
        );
    }
    h.push_str("</ul>\n</section>\n");
}

fn scenario(h: &mut String, r: &CampaignResult) {
    let _ = writeln!(
        h,
        "<section id=\"scenario\">\n<h2>Scenario</h2>\n<p><code>{}</code>, sha256 <code>{}</code></p>\n<pre class=\"scenario\">{}</pre>\n</section>",
        esc(&r.scenario.path),
        esc(&r.scenario.sha256),
        esc(&r.scenario.text)
    );
}

/// A figure: the chart (or why it could not be drawn), its caption, and its numbers.
fn figure(h: &mut String, id: &str, svg: Result<String, String>, caption: &str, numbers: &str) {
    let _ = writeln!(h, "<figure class=\"chart\" id=\"{id}\">");
    match svg {
        Ok(svg) => h.push_str(strip_xml_decl(&svg)),
        Err(e) => {
            let _ = write!(
                h,
                "<p class=\"sev-fail\">chart could not be drawn: {}</p>",
                esc(&e)
            );
        }
    }
    let _ = writeln!(
        h,
        "\n<figcaption>{}</figcaption>\n<details><summary>Numbers</summary>\n{numbers}\n</details>\n</figure>",
        esc(caption)
    );
}

fn strip_xml_decl(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// The numbers under a chart plotted against the offered rate: step, configuration, rate, the
/// chart's columns, validity.
fn numbers(
    all: &[StepRow],
    head: &str,
    cols: &[&str],
    cells: impl Fn(&StepRow) -> Vec<Option<String>>,
) -> String {
    number_table(all, head, cols, true, cells)
}

/// The numbers under a chart plotted per step: step number, step, configuration, the chart's
/// columns.
fn per_step_numbers(
    all: &[StepRow],
    head: &str,
    cols: &[&str],
    cells: impl Fn(&StepRow) -> Vec<Option<String>>,
) -> String {
    number_table(all, head, cols, false, cells)
}

/// One builder for both layouts: `by_rate` leads with the rate and ends with validity, else the
/// row leads with the step's number.
fn number_table(
    all: &[StepRow],
    head: &str,
    cols: &[&str],
    by_rate: bool,
    cells: impl Fn(&StepRow) -> Vec<Option<String>>,
) -> String {
    let mut t = format!("<table><thead>{head}");
    for c in cols {
        let _ = write!(t, "<th>{}</th>", esc(c));
    }
    t.push_str(if by_rate {
        "<th class=\"l\">valid</th></tr></thead><tbody>\n"
    } else {
        "</tr></thead><tbody>\n"
    });
    for r in all {
        let (key, config) = (esc(&r.key()), esc(&r.configuration_label()));
        let _ = if by_rate {
            write!(
                t,
                "<tr><td class=\"l\">{key}</td><td class=\"l\">{config}</td><td>{}</td>",
                r.rate_cell()
            )
        } else {
            write!(
                t,
                "<tr><td>{}</td><td class=\"l\">{key}</td><td class=\"l\">{config}</td>",
                r.index
            )
        };
        for c in cells(r) {
            td(&mut t, c);
        }
        if by_rate {
            let _ = writeln!(t, "<td class=\"l\">{}</td></tr>", esc(&r.valid_cell()));
        } else {
            t.push_str("</tr>\n");
        }
    }
    t.push_str("</tbody></table>");
    t
}

fn td(h: &mut String, cell: Option<String>) {
    match cell {
        Some(c) => {
            let _ = write!(h, "<td>{}</td>", esc(&c));
        }
        None => {
            let _ = write!(h, "<td class=\"missing\">{MISSING}</td>");
        }
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

const CAPTION_RATIO: &str =
    "Solid: counted by the service's own counter (TD4's \"success\"). Dashed: 2xx answers \
    seen by the generator. A gap between them means answered-but-not-counted or \
    counted-but-timed-out requests.";
const CAPTION_LATENCY: &str =
    "Latency is measured from when each request was due, so a generator or server that falls \
    behind shows up here (no coordinated omission). Solid: p99; dashed: p50.";
const CAPTION_ACHIEVED: &str =
    "Points on the dashed diagonal mean the generator sent at the rate it was asked to; below \
    it, the generator (not the service) was the limit. Crosses: invalid or interrupted steps \
    (an interrupted step sent for only part of its duration).";
const CAPTION_CPU: &str =
    "CPU time each replica's cgroup used over the step, in cores. Compare with the CPU limit \
    column: a replica pinned at its limit is throttled, one well below it with a low counted \
    share points elsewhere.";
const CAPTION_THROTTLED: &str =
    "Share of 100 ms scheduler periods in which the replica hit its CPU quota and was paused. \
    No bar: not measured (e.g. no cgroup).";
const CAPTION_SPREAD: &str =
    "How the kernel (SO_REUSEPORT) or the Service spread the load: with 2 replicas an even \
    spread is 50 % each.";
