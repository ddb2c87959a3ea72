//! `report.html`: one self-contained page (inline CSS and SVG, no script, nothing fetched) that
//! answers "how much load does each configuration take, and why not more". Rendering is a pure
//! function of the `run.json`: no clock, stable order and float formatting, so the same input
//! gives byte-identical output. This module owns the page's skeleton (head, stylesheet, the order
//! of its sections, footer); each section is drawn by its own module.

mod campaign;
mod capacity;
mod charts;
mod comparison;
mod cross_check;
mod escape;
mod figure;
mod findings;
mod header;
mod numbers;
mod scaling;
mod scenario;
mod timelines;
mod tls;
mod verdict;

use std::fmt::Write as _;

use loadgen_model::result::CampaignResult;

use super::RUN_JSON;

pub use escape::esc;
pub use timelines::MAX_TIMELINE_POINTS;

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
    render_compared(result, None)
}

/// Renders the whole page, with a comparison section when `comparison` is given. A run with a
/// capacity search leads with the answer: its capacities and the counted-vs-rate chart come
/// right under the verdict, before the tables.
pub fn render_compared(
    result: &CampaignResult,
    comparison: Option<&loadgen_judge::comparison::Comparison>,
) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let title = format!("loadgen report — {}", result.scenario.name);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        esc(&title)
    );
    header::write(&mut h, result);
    verdict::write(&mut h, result);
    capacity::write(&mut h, result);
    if let Some(c) = comparison {
        comparison::write(&mut h, c);
    }
    campaign::write(&mut h, result);
    cross_check::write(&mut h, result);
    tls::write(&mut h, result);
    charts::write(&mut h, result);
    timelines::write(&mut h, result);
    scaling::write(&mut h, result);
    findings::write(&mut h, result);
    scenario::write(&mut h, result);
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

/// The self-contained page of a `loadgen compare`: verdict, table, both capacity curves.
pub fn render_paired(c: &loadgen_model::compare::CompareResult) -> String {
    use crate::paired;
    let mut body = format!(
        "<h1>Capacity comparison</h1>\n<p class=\"verdict\">{}</p>\n",
        escape::esc(&paired::verdict_line(c))
    );
    body.push_str("<table><tr><th>configuration</th><th>base req/s</th><th>head req/s</th><th>head/base</th><th>interval</th><th>verdict</th><th>why</th></tr>\n");
    let num = |r: Option<f64>, p: usize| r.map_or("—".to_string(), |r| format!("{r:.p$}"));
    for x in &c.configurations {
        body.push_str(&format!(
            "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}–{}</td><td><b>{}</b></td><td>{}</td></tr>\n",
            escape::esc(&x.campaign),
            escape::esc(&x.configuration),
            num(x.base.capacity_rps, 0),
            num(x.head.capacity_rps, 0),
            num(x.ratio, 3),
            num(x.ratio_low, 3),
            num(x.ratio_high, 3),
            x.verdict.as_str(),
            escape::esc(&x.reason)
        ));
    }
    body.push_str("</table>\n");
    for x in &c.configurations {
        match paired::curves_chart(x) {
            Ok(svg) => body.push_str(&format!("<figure>{svg}</figure>\n")),
            Err(e) => body.push_str(&format!(
                "<p>chart not drawn: {}</p>\n",
                escape::esc(&e.to_string())
            )),
        }
    }
    body.push_str(&format!(
        "<p>Each side is a run of its own: <a href=\"{0}/report.html\">{0}</a>, <a href=\"{1}/report.html\">{1}</a>. {2} probes, interleaved, in {3:.0} s.</p>\n",
        escape::esc(&c.base.run_dir),
        escape::esc(&c.head.run_dir),
        c.order.len(),
        c.wall_s
    ));
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>loadgen compare</title><style>{CSS}</style></head><body>\n{body}</body></html>\n"
    )
}
