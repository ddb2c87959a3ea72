//! Capacity search and the capacity check: search campaigns validated at their keys, the
//! comparison rules on synthetic run pairs (a clear regression, a drop inside the repeats'
//! noise, an improvement, a configuration only in one run, another scenario), the goldens of
//! `loadgen check` (table and Markdown) and of the report's comparison section, and — with
//! real processes — a search that finds a 1-core polymetrie's knee and a check that catches a
//! doubled cost per click. `UPDATE_GOLDEN=1` rewrites the goldens (check-table.txt,
//! check-summary.md, report-comparison.html).

mod check;
mod compare;
mod judged;
mod real;
mod scenario;
