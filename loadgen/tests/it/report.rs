//! Golden and behaviour tests of the report renderers on the fixed fixture
//! `tests/fixtures/run.json`: terminal table, steps.csv, report.html, the capacity verdict and
//! `loadgen report` — which also re-renders the committed `reports/example-td4/` byte for byte.
//! `UPDATE_GOLDEN=1 cargo test -p loadgen --test it -- report::` rewrites the golden files;
//! review the diff before committing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use loadgen_model::result::CampaignResult;
use loadgen_report::{self as report, capacity, html, row, steps_csv, table};

use crate::common::{self, command, golden::assert_golden as golden};

fn fixture_path() -> PathBuf {
    common::manifest_dir().join("tests/fixtures/run.json")
}

fn fixture() -> CampaignResult {
    let text = std::fs::read_to_string(fixture_path()).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture is a valid run.json")
}

#[test]
fn terminal_table_matches_golden() {
    golden("table.txt", &table::render(&fixture()));
}

#[test]
fn steps_csv_matches_golden() {
    golden("steps.csv", &steps_csv::render(&fixture()).unwrap());
}

#[test]
fn html_matches_golden() {
    golden("report.html", &html::render(&fixture()));
}

#[test]
fn rendering_is_deterministic() {
    let r = fixture();
    assert_eq!(html::render(&r), html::render(&fixture()));
    assert_eq!(table::render(&r), table::render(&r));
    assert_eq!(
        steps_csv::render(&r).unwrap(),
        steps_csv::render(&r).unwrap()
    );
}

#[test]
fn unmeasured_values_are_dashes_or_empty_never_zero() {
    let r = fixture();
    // b-180-1r has neither counter nor CPU readings.
    let step = r.steps.iter().find(|s| s.name == "b-180-1r").unwrap();
    assert!(step.counter.is_none() && step.cpu.is_none() && step.counted_ratio.is_none());
    let rows = row::rows(&r);
    let b = rows.iter().find(|x| x.name == "b-180-1r").unwrap();
    let cells = table::cells(b);
    let col = |name: &str| table::HEADERS.iter().position(|h| *h == name).unwrap();
    assert_eq!(cells[col("counted %")], row::MISSING);
    assert_eq!(cells[col("CPU used (cores)")], row::MISSING);
    assert_eq!(cells[col("throttled %")], row::MISSING);
    assert_eq!(
        cells[col("CPU limit")],
        "none",
        "no limit is not 'unmeasured'"
    );

    let table_text = table::render(&r);
    let line = table_text.lines().find(|l| l.contains("b-180-1r")).unwrap();
    assert!(line.contains('—'), "{line}");

    let csv = steps_csv::render(&r).unwrap();
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let rec = rdr
        .records()
        .map(Result::unwrap)
        .find(|rec| &rec[2] == "b-180-1r")
        .unwrap();
    for name in [
        "counter_delta",
        "counted_pct",
        "cpu_cores_used",
        "cpu_cores_per_replica",
        "throttled_pct",
        "prometheus_counter_increase",
    ] {
        let i = headers.iter().position(|h| h == name).unwrap();
        assert_eq!(&rec[i], "", "{name} must be empty when unmeasured");
    }
    // The invalid b-1500-1r step has no latency at all: empty, not 0.
    let rec = csv::Reader::from_reader(csv.as_bytes())
        .records()
        .map(Result::unwrap)
        .find(|rec| &rec[2] == "b-1500-1r")
        .unwrap();
    let i = headers.iter().position(|h| h == "latency_p99_ms").unwrap();
    assert_eq!(&rec[i], "");
}

/// The terminal table as a reader sees it: per `(campaign, step)`, its cells by the column
/// names of the header line above it — parsed from the rendered text, not taken from the
/// renderer's own cell functions.
fn table_cells_from_text(text: &str) -> BTreeMap<(String, String), BTreeMap<String, String>> {
    let split = |line: &str| -> Vec<String> {
        let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
        inner.split('|').map(|c| c.trim().to_string()).collect()
    };
    let mut out = BTreeMap::new();
    let (mut campaign, mut header) = (String::new(), Vec::new());
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("Campaign ") {
            campaign = title.split(" — ").next().unwrap().to_string();
        } else if line.starts_with("| step ") {
            header = split(line);
        } else if line.starts_with("| ") {
            let cells = split(line);
            assert_eq!(cells.len(), header.len(), "{line}");
            let row: BTreeMap<String, String> = header.iter().cloned().zip(cells).collect();
            out.insert((campaign.clone(), row["step"].clone()), row);
        }
    }
    out
}

/// Decimals shown in a number cell.
fn decimals(cell: &str) -> i32 {
    cell.split_once('.').map_or(0, |(_, f)| f.len() as i32)
}

/// A shown number agrees with the measured one to the precision it is shown with.
fn shows(cell: &str, value: f64, what: &str) {
    let shown: f64 = cell
        .parse()
        .unwrap_or_else(|e| panic!("{what}: {cell:?} is not a number: {e}"));
    let half_unit = 0.5 * 10f64.powi(-decimals(cell)) + 1e-9;
    assert!(
        (shown - value).abs() <= half_unit,
        "{what}: shows {cell}, measured {value}"
    );
}

/// A number list (`0.71 / 0.52`, `0.71;0.52`) shows `values` in order, to its precision.
fn shows_list(cell: &str, sep: &str, values: &[Option<f64>], what: &str) {
    let cells: Vec<&str> = cell.split(sep).map(str::trim).collect();
    assert_eq!(cells.len(), values.len(), "{what}: {cell:?} vs {values:?}");
    for (c, v) in cells.iter().zip(values) {
        shows(
            c,
            v.unwrap_or_else(|| panic!("{what}: shown but not measured")),
            what,
        );
    }
}

#[test]
fn csv_and_table_show_the_same_numbers() {
    // Both renderers read the same rows; so each is checked against run.json's own numbers,
    // the table by parsing its text and the CSV by parsing its records, and their cells
    // against each other — a cell that took the wrong field or scale cannot agree with all.
    let r = fixture();
    let table = table_cells_from_text(&table::render(&r));
    let csv_text = steps_csv::render(&r).unwrap();
    let mut rdr = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), r.steps.len());
    assert_eq!(table.len(), r.steps.len());
    let col = |n: &str| headers.iter().position(|h| h == n).unwrap();
    for step in &r.steps {
        let campaign = step.campaign.clone().unwrap_or_default();
        let t = &table[&(campaign.clone(), step.name.clone())];
        let rec = records
            .iter()
            .find(|rec| rec[col("campaign")] == campaign && rec[col("step")] == step.name)
            .unwrap_or_else(|| panic!("no CSV row for {}", step.name));
        let c = |n: &str| rec[col(n)].to_string();
        let pct = |v: Option<f64>| v.map(|v| v * 100.0);
        let cpu: Vec<Option<f64>> = step
            .cpu
            .iter()
            .flat_map(|c| &c.per_replica)
            .map(|p| p.cores_used)
            .collect();
        let cpu_measured = cpu.iter().any(Option::is_some);
        for (table_col, csv_col, value) in [
            ("counted %", "counted_pct", pct(step.counted_ratio)),
            ("client ok %", "client_ok_pct", pct(step.success_ratio)),
            ("p50 (ms)", "latency_p50_ms", step.latency_ms.p50),
            ("p99 (ms)", "latency_p99_ms", step.latency_ms.p99),
            ("rate (req/s)", "rate_rps", Some(step.rate_rps)),
            ("requests", "intended_requests", Some(step.intended as f64)),
        ] {
            let what = format!("{}: {table_col} / {csv_col}", step.name);
            let (shown, csv_cell) = (&t[table_col], c(csv_col));
            match value {
                None => {
                    assert_eq!(shown, row::MISSING, "{what}");
                    assert_eq!(csv_cell, "", "{what}");
                }
                Some(v) => {
                    shows(shown, v, &format!("{what} (table)"));
                    shows(&csv_cell, v, &format!("{what} (csv)"));
                }
            }
        }
        let what = format!("{}: CPU used", step.name);
        if cpu_measured {
            shows_list(&t["CPU used (cores)"], "/", &cpu, &what);
            shows_list(&c("cpu_cores_per_replica"), ";", &cpu, &what);
        } else {
            assert_eq!(t["CPU used (cores)"], row::MISSING, "{what}");
            assert_eq!(c("cpu_cores_per_replica"), "", "{what}");
        }
        let replicas = step.topology.as_ref().map(|t| t.replicas.to_string());
        assert_eq!(Some(&t["replicas"]), replicas.as_ref(), "{}", step.name);
        assert_eq!(Some(c("replicas")), replicas, "{}", step.name);
    }
}

#[test]
fn capacity_verdict_on_the_fixture() {
    let caps = capacity::safe_capacity(&fixture());
    let find = |replicas: u32, cpu: Option<f64>| {
        caps.iter()
            .find(|c| c.replicas == Some(replicas) && c.cpu_limit_cores == cpu)
            .unwrap_or_else(|| panic!("no configuration {replicas} × {cpu:?} in {caps:?}"))
    };
    // 1 replica, 1 core: 100 and 180 counted all, 250 fell to 94 %: knee in 180..250.
    let one = find(1, Some(1.0));
    assert_eq!(one.safe_rate_rps, Some(180.0));
    assert_eq!(one.failed_rate_rps, Some(250.0));
    assert_eq!(one.basis, Some(capacity::Basis::Counted));
    assert!(
        one.sentence().contains("safe capacity ≈ 180 req/s"),
        "{}",
        one.sentence()
    );
    assert!(
        one.sentence().contains("knee between 180 and 250"),
        "{}",
        one.sentence()
    );
    // 2 replicas, 1 core: its only step was interrupted (invalid): nothing to judge.
    let two = find(2, Some(1.0));
    assert_eq!((two.safe_rate_rps, two.failed_rate_rps), (None, None));
    assert_eq!(two.excluded_steps, 1);
    // 1 replica, no limit: b-180 has no counter, so the client's view judges it and the
    // sentence says so; b-1500 is invalid and left out; c-500 counted 54.7 %.
    let free = find(1, None);
    assert_eq!(free.safe_rate_rps, Some(180.0));
    assert_eq!(free.failed_rate_rps, Some(500.0));
    assert_eq!(free.basis, Some(capacity::Basis::Mixed));
    assert!(free.sentence().contains("client ok"), "{}", free.sentence());
    assert_eq!(free.excluded_steps, 1);
    // 2 replicas, no limit: 300 req/s counted 96.5 %.
    let two_free = find(2, None);
    assert_eq!(two_free.safe_rate_rps, None);
    assert_eq!(two_free.failed_rate_rps, Some(300.0));
}

#[test]
fn verdict_carries_the_evidence_of_the_first_shortfall() {
    let caps = capacity::safe_capacity(&fixture());
    let one = caps
        .iter()
        .find(|c| c.replicas == Some(1) && c.cpu_limit_cores == Some(1.0))
        .unwrap();
    let e = one.failed_evidence.as_deref().unwrap();
    assert!(e.starts_with("at A/a-250-1r (250 req/s)"), "{e}");
    assert!(
        e.contains("throttled 62.0 %") && e.contains("(limit 1.00)"),
        "{e}"
    );
    let h = html::render(&fixture());
    assert!(h.contains("First shortfall at A/a-250-1r"));
}

#[test]
fn renders_empty_and_sparse_runs_without_inventing_numbers() {
    let mut r = fixture();
    r.steps.clear();
    r.findings.clear();
    assert!(table::render(&r).contains("No step in this run."));
    assert_eq!(steps_csv::render(&r).unwrap().lines().count(), 1);
    assert!(html::render(&r).contains("No step in this run."));
    assert!(capacity::safe_capacity(&r).is_empty());

    // One step with nothing but the generator's counts: no topology, no probes, no latency.
    let mut r = fixture();
    let mut s = r.steps[0].clone();
    s.topology = None;
    s.counter = None;
    s.counted_ratio = None;
    s.cpu = None;
    s.prometheus = None;
    s.success_ratio = None;
    s.achieved_rps = None;
    s.latency_ms = Default::default();
    s.timeline.clear();
    r.steps = vec![s];
    r.findings.clear();
    let t = table::render(&r);
    let line = t.lines().find(|l| l.contains("a-100-1r")).unwrap();
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    // step, rate, requests are known; everything measured by probes is a dash.
    assert_eq!(&cells[1..4], &["a-100-1r", "100", "1000"]);
    for c in &cells[4..12] {
        assert_eq!(*c, row::MISSING, "{line}");
    }
    let h = html::render(&r);
    assert!(h.contains("no timeline recorded"));
    let caps = capacity::safe_capacity(&r);
    assert_eq!(caps.len(), 1);
    assert_eq!(caps[0].sentence(), "unknown topology: no valid step to judge [1 step(s) not judged: invalid, interrupted or unmeasured]");
}

#[test]
fn html_is_self_contained_and_complete() {
    let r = fixture();
    let h = html::render(&r);
    for forbidden in ["<script", "http://", "https://", "@import", "url("] {
        // The only URLs allowed are the SVG namespace declarations plotters writes.
        let hits = h.matches(forbidden).count();
        let ns = if forbidden == "http://" {
            h.matches("http://www.w3.org/").count()
        } else {
            0
        };
        assert_eq!(hits, ns, "report.html must not reference {forbidden}");
    }
    for id in [
        "chart-ratio",
        "chart-latency",
        "chart-achieved",
        "chart-cpu",
        "chart-throttled",
        "chart-spread",
    ] {
        assert!(h.contains(&format!("id=\"{id}\"")), "missing {id}");
    }
    for i in 1..=r.steps.len() {
        assert!(h.contains(&format!("id=\"chart-timeline-{i}\"")));
    }
    assert!(h.contains("href=\"run.json\"") && h.contains("href=\"steps.csv\""));
    // The scenario text is there, escaped.
    assert!(h.contains("Latency &lt; 1 s &amp; &quot;success&quot;"));
    assert!(!h.contains("Latency < 1 s"));
    // Findings sit next to their step, whichever way Finding.step names it.
    let a1000 = h.find("id=\"step-4\"").unwrap();
    let next = h[a1000..].find("</tr>\n<tr").unwrap() + a1000;
    let findings_row = &h[next..next + 2000];
    assert!(
        findings_row.contains("counted 31.0 % &lt; 99 %"),
        "{findings_row}"
    );
    assert!(findings_row.contains("throttled in 91 %"));
    // Interrupted run status and the Prometheus side-by-side view.
    assert!(h.contains("Run INTERRUPTED"));
    assert!(h.contains("Three views of each step"));
    assert!(h.contains("sum(increase(polymetrie_clicks_total[10s]))"));
    // The 600 s step is downsampled to at most MAX_TIMELINE_POINTS points.
    assert!(h.contains("Averaged over 5 s buckets"));
    assert!(h.len() < 2_000_000, "report is {} bytes", h.len());
}

#[test]
fn a_twenty_step_run_of_ten_minute_steps_stays_well_under_2_mb() {
    let mut r = fixture();
    let long = r
        .steps
        .iter()
        .find(|s| s.duration_s == 600.0)
        .unwrap()
        .clone();
    assert_eq!(long.timeline.len(), 600);
    r.steps = (0..20)
        .map(|i| {
            let mut s = long.clone();
            s.name = format!("long-{i}");
            s.rate_rps = 100.0 + 50.0 * f64::from(i);
            s
        })
        .collect();
    let h = html::render(&r);
    eprintln!("20 steps of 600 s: report.html is {} bytes", h.len());
    assert!(h.len() < 1_500_000, "report.html is {} bytes", h.len());
}

#[test]
fn a_finding_copied_to_the_run_level_is_shown_once() {
    let mut r = fixture();
    let step = r.steps.iter().find(|s| s.name == "b-300-2r").unwrap();
    let copy = step.checks[0].clone();
    r.findings.push(copy.clone());
    let rows = row::rows(&r);
    let b = rows.iter().find(|x| x.name == "b-300-2r").unwrap();
    assert_eq!(
        row::findings_for(&r, b)
            .iter()
            .filter(|f| ***f == copy)
            .count(),
        1
    );
}

#[test]
fn write_outputs_writes_both_files() {
    let dir = common::tempdir("report-write-outputs");
    let paths = report::write_outputs(&fixture(), dir.path()).unwrap();
    let csv = std::fs::read_to_string(&paths.steps_csv).unwrap();
    assert_eq!(csv.lines().count(), fixture().steps.len() + 1);
    let html = std::fs::read_to_string(&paths.report_html).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[test]
fn report_command_renders_and_exits_1_on_fail_findings() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("report-command");
    let dir = dir.path();
    let out = render_with_the_binary(&fixture_path(), dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "fixture has a fail finding; {stdout}"
    );
    assert!(stdout.contains("Campaign A"));
    assert!(stdout.contains("Verdict:"));
    for f in ["steps.csv", "report.html", "run.json"] {
        assert!(dir.join(f).is_file(), "{f} not written");
    }
}

#[test]
fn report_command_exits_2_naming_a_bad_file() {
    let _serial = common::serial::lock_blocking();
    let dir = common::tempdir("report-bad");
    let dir = dir.path();
    let bad = dir.join("run.json");
    std::fs::write(&bad, "{ not json").unwrap();
    for path in [bad.clone(), dir.join("missing.json")] {
        let out = command::loadgen()
            .arg("report")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    }
}

#[test]
fn readme_documents_every_csv_column() {
    let readme = std::fs::read_to_string(common::repo_dir().join("reports/README.md")).unwrap();
    for (name, _) in steps_csv::COLUMNS {
        assert!(
            readme.contains(&format!("`{name}`")),
            "reports/README.md lacks `{name}`"
        );
    }
}

/// `loadgen report RUN_JSON --out DIR`.
fn render_with_the_binary(run_json: &Path, out: &Path) -> Output {
    command::loadgen()
        .arg("report")
        .arg(run_json)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

/// The committed example is what today's renderer makes of its own run.json, byte for byte: a
/// change to the renderer shows up here, and `reports/example-td4/` is re-rendered with it.
#[test]
fn the_example_td4_report_re_renders_byte_for_byte() {
    let _serial = common::serial::lock_blocking();
    let example = common::repo_dir().join("reports/example-td4");
    let dir = common::tempdir("report-example");
    let out = render_with_the_binary(&example.join("run.json"), dir.path());
    command::assert_exit(&out, 0);
    for f in ["report.html", "steps.csv"] {
        common::golden::assert_same_file(&example.join(f), &dir.path().join(f));
    }
}
