//! The scenario appendix: the campaign file exactly as it was run, with its path and hash.

use std::fmt::Write as _;

use loadgen_model::result::CampaignResult;

use super::escape::esc;

pub(super) fn write(h: &mut String, r: &CampaignResult) {
    let _ = writeln!(
        h,
        "<section id=\"scenario\">\n<h2>Scenario</h2>\n<p><code>{}</code>, sha256 <code>{}</code></p>\n<pre class=\"scenario\">{}</pre>\n</section>",
        esc(&r.scenario.path),
        esc(&r.scenario.sha256),
        esc(&r.scenario.text)
    );
}
