//! The most probes one configuration's search can take, over every possible sequence of
//! outcomes: the plan's time estimate and the guard [`super::decide`] stops at
//! ([`super::Ending::ProbeLimit`]), which the decisions never reach.

use super::{SearchSpec, GROWTH, REOPENS, RERUNS_PER_SEARCH};

/// The most probes one configuration's search can take: the probes that are evidence (see
/// [`worst_case_evidence`]) and the re-runs of the generator's spoiled ones, the last spoiled
/// probe (the one that ends the search) included.
pub fn worst_case_probes(spec: &SearchSpec) -> usize {
    worst_case_evidence(spec) + RERUNS_PER_SEARCH + 1
}

/// The most probes that are evidence. Without repeats, a knee costs the growth up to it and
/// the bisections of its doubling. With repeats, each round costs the bisections of one
/// doubling at most (a reopened bracket lies inside the doubling of the end that moved) and
/// the repeats of its two ends, a tie-break each when their runs can tie; growth rates are
/// probed once each, whichever round gets to them.
pub(super) fn worst_case_evidence(spec: &SearchSpec) -> usize {
    let from = spec.from_rps.round();
    let to = spec.to_rps.round();
    let repeats = spec.confirm as usize;
    // The growth rates, as the search offers them.
    let mut grow = vec![from];
    while let Some(&last) = grow.last().filter(|r| **r < to) {
        grow.push((last * GROWTH).round().min(to));
    }
    let halve = |i: usize| match i.checked_sub(1) {
        Some(j) => bisections(spec.precision, grow[j], grow[i]),
        None => 0,
    };
    let n = grow.len();
    if repeats == 0 {
        // Every verdict is one probe: nothing turns, nothing reopens.
        return (0..n).map(|i| i + 1 + halve(i)).max().unwrap_or(1).max(n);
    }
    // 1 + repeats runs can split evenly when even: one more breaks the tie.
    let tie = repeats % 2;
    let widest = (0..n).map(halve).max().unwrap_or(0);
    n + (1 + REOPENS) * (widest + 2 * (repeats + tie))
}

/// The most bisection probes between `pass` and `fail`, over every outcome.
fn bisections(precision: f64, pass: f64, fail: f64) -> usize {
    let mid = (pass * fail).sqrt().round();
    if fail / pass - 1.0 <= precision || mid <= pass || mid >= fail {
        return 0;
    }
    1 + bisections(precision, mid, fail).max(bisections(precision, pass, mid))
}
