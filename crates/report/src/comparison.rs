//! A [`Comparison`] as text: the terminal table `loadgen check` prints and the Markdown it
//! writes to `$GITHUB_STEP_SUMMARY` — the same rows, cells and verdict line in both, from
//! [`cells`], so the two cannot disagree.

use tabled::builder::Builder;
use tabled::settings::object::Columns;
use tabled::settings::{Alignment, Style};

use loadgen_judge::comparison::{CapacityRow, Comparison, Outcome};
use loadgen_model::capacity::Capacity;

use super::row::{configuration_label, num, MISSING};

/// Headers of the capacity table.
pub const HEADERS: [&str; 6] = [
    "configuration",
    "baseline (req/s)",
    "run (req/s)",
    "change",
    "spread (req/s)",
    "verdict",
];

/// Headers of the step table.
pub const STEP_HEADERS: [&str; 5] = ["step", "figure", "baseline", "run", "change"];

/// The cells of one configuration, in [`HEADERS`] order.
pub fn cells(r: &CapacityRow) -> Vec<String> {
    let any = r.baseline.as_ref().or(r.run.as_ref());
    let label = any.map_or(String::new(), |c| {
        let t = &c.topology;
        configuration_label(Some(t.replicas), t.cpu_limit_cores, Some(&t.store))
    });
    let spread = |c: &Option<Capacity>| {
        c.as_ref()
            .and_then(|c| c.spread_rps)
            .map_or(MISSING.to_string(), |s| num(s, 0))
    };
    vec![
        format!("{}/{} ({label})", r.campaign, r.configuration),
        capacity_cell(r.baseline.as_ref()),
        capacity_cell(r.run.as_ref()),
        r.change.map_or(MISSING.to_string(), signed_pct),
        format!("{} / {}", spread(&r.baseline), spread(&r.run)),
        r.verdict.as_str().to_string(),
    ]
}

/// "87 (fails 91)": the capacity and the lowest failing rate; "< 40" when even the lowest
/// probe failed.
fn capacity_cell(c: Option<&Capacity>) -> String {
    let Some(c) = c else {
        return MISSING.to_string();
    };
    match (c.capacity_rps, c.failed_rps) {
        (Some(p), Some(f)) => format!("{} (fails {})", num(p, 0), num(f, 0)),
        (Some(p), None) => format!("≥ {}", num(p, 0)),
        (None, Some(f)) => format!("< {}", num(f, 0)),
        (None, None) => MISSING.to_string(),
    }
}

fn signed_pct(change: f64) -> String {
    let s = num(change * 100.0, 1);
    if change > 0.0 {
        format!("+{s} %")
    } else {
        format!("{s} %")
    }
}

/// The one-line result, e.g. "REGRESSION: ci/r1-cpu0.5 87 → 44 req/s (-49.4 %)"; a verdict
/// reached across a difference that `--allow-different` let through says so.
pub fn verdict_line(c: &Comparison) -> String {
    let line = outcome_line(c);
    if c.options.allow_different && !c.differences.is_empty() {
        format!(
            "{line} (compared anyway with --allow-different: {})",
            c.differences.join("; ")
        )
    } else {
        line
    }
}

fn outcome_line(c: &Comparison) -> String {
    let tol = num(c.options.tolerance * 100.0, 0);
    match c.outcome() {
        Outcome::NotComparable if c.differences.is_empty() => {
            "NOT COMPARABLE: no configuration or step of the run pairs with the baseline".into()
        }
        Outcome::NotComparable => format!(
            "NOT COMPARABLE: {} (--allow-different compares anyway)",
            c.differences.join("; ")
        ),
        Outcome::Regression => {
            let list: Vec<String> = c
                .regressions()
                .map(|r| {
                    let cap = |c: &Option<Capacity>| {
                        c.as_ref()
                            .and_then(|c| c.capacity_rps)
                            .map_or("none".to_string(), |v| num(v, 0))
                    };
                    format!(
                        "{}/{} {} → {} req/s ({})",
                        r.campaign,
                        r.configuration,
                        cap(&r.baseline),
                        cap(&r.run),
                        r.change.map_or(MISSING.to_string(), signed_pct)
                    )
                })
                .collect();
            format!(
                "REGRESSION beyond the {tol} % tolerance and the repeats' spread: {}",
                list.join("; ")
            )
        }
        Outcome::Pass => format!(
            "PASS: no capacity dropped by more than the {tol} % tolerance and the repeats' spread"
        ),
    }
}

/// The terminal table, the step changes worse than the tolerance, and the verdict line.
pub fn render(c: &Comparison) -> String {
    let mut out = String::new();
    if !c.differences.is_empty() && c.options.allow_different {
        for d in &c.differences {
            out.push_str(&format!(
                "warning: {d} (compared anyway: --allow-different)\n"
            ));
        }
    }
    let mut b = Builder::default();
    b.push_record(HEADERS);
    for r in &c.capacities {
        b.push_record(cells(r));
    }
    let mut t = b.build();
    t.with(Style::markdown())
        .modify(Columns::new(1..5), Alignment::right());
    out.push_str(&format!("Capacity per configuration\n{t}\n"));
    out.push_str(&steps_note(c));
    let worse: Vec<Vec<String>> = c.steps.iter().filter(|s| s.worse).map(step_cells).collect();
    if !worse.is_empty() {
        let mut b = Builder::default();
        b.push_record(STEP_HEADERS);
        for w in worse {
            b.push_record(w);
        }
        let mut t = b.build();
        t.with(Style::markdown())
            .modify(Columns::new(2..5), Alignment::right());
        out.push_str(&format!("{t}\n"));
    }
    out.push_str(&verdict_line(c));
    out.push('\n');
    out
}

fn steps_note(c: &Comparison) -> String {
    let worse = c.steps.iter().filter(|s| s.worse).count();
    format!(
        "Steps with the same id on both sides: {}; figures worse than the tolerance: {worse} \
         (single measurements: shown, not gated on)\n",
        c.steps_paired
    )
}

fn step_cells(s: &loadgen_judge::comparison::StepChange) -> Vec<String> {
    let v = |x: f64| {
        if s.figure == "counted ratio" {
            format!("{} %", num(x * 100.0, 1))
        } else {
            num(x, 2)
        }
    };
    vec![
        s.id.to_string(),
        s.figure.to_string(),
        v(s.baseline),
        v(s.run),
        signed_pct(s.change),
    ]
}

/// The Markdown of a GitHub step summary: a heading with the outcome, the capacity table,
/// the step changes worse than the tolerance, and the verdict line.
pub fn markdown(c: &Comparison) -> String {
    let word = match c.outcome() {
        Outcome::Pass => "pass",
        Outcome::Regression => "REGRESSION",
        Outcome::NotComparable => "not comparable",
    };
    let mut out = format!(
        "### loadgen capacity check: {word}\n\nTolerance {} %.\n\n",
        num(c.options.tolerance * 100.0, 0)
    );
    for d in c.differences.iter().filter(|_| c.options.allow_different) {
        out.push_str(&format!("> warning: {d} (compared anyway)\n\n"));
    }
    out.push_str(&md_table(&HEADERS, c.capacities.iter().map(cells)));
    out.push('\n');
    out.push_str(&steps_note(c));
    let worse: Vec<Vec<String>> = c.steps.iter().filter(|s| s.worse).map(step_cells).collect();
    if !worse.is_empty() {
        out.push('\n');
        out.push_str(&md_table(&STEP_HEADERS, worse.into_iter()));
    }
    out.push_str(&format!("\n**{}**\n", md_escape(&verdict_line(c))));
    out
}

fn md_table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(headers.iter().map(|h| md_escape(h)).collect());
    out.push_str(&line(headers.iter().map(|_| "---".to_string()).collect()));
    for r in rows {
        out.push_str(&line(r.iter().map(|c| md_escape(c)).collect()));
    }
    out
}

/// Cells may hold `|` (never today) or `*`; both would break the table or its emphasis.
fn md_escape(s: &str) -> String {
    s.replace('|', "\\|").replace('*', "\\*")
}
