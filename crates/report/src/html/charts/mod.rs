//! The charts section: its introduction, then the [`curves`] of each configuration against the
//! offered rate and the [`replica_bars`] of each step, every chart with its caption and its
//! numbers.

mod curves;
mod replica_bars;

use crate::capacity;
use crate::row::rows;
use loadgen_model::result::CampaignResult;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    let all = rows(r);
    let caps = capacity::safe_capacity(r);
    // A run with a search shows the counted-vs-rate chart up front, with its capacities.
    let ratio_shown = !r.capacities.is_empty();
    h.push_str(
        "<section id=\"charts\">\n<h2>Charts</h2>\n<p>Curves join the valid, uninterrupted steps \
         of one configuration; invalid or interrupted steps are left off the curves (they are \
         marked in the tables above). Per-step bar charts number the steps as in the tables below \
         each chart.</p>\n",
    );
    curves::write(h, &caps, &all, ratio_shown);
    replica_bars::write(h, &all);
    h.push_str("</section>\n");
}

/// The share counted (and answered OK) against the offered rate, one curve per configuration.
pub(super) fn counted_vs_rate(h: &mut String, r: &CampaignResult) {
    curves::ratio(h, &capacity::safe_capacity(r), &rows(r));
}
