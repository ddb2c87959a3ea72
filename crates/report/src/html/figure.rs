//! A figure: one chart inline (or why it could not be drawn), its caption and its numbers
//! folded under it, so every plotted value can also be read.

use std::fmt::Write as _;

use super::escape::esc;
use crate::chart::ChartError;

/// A figure: the chart (or why it could not be drawn), its caption, and its numbers.
pub(super) fn figure(
    h: &mut String,
    id: &str,
    svg: Result<String, ChartError>,
    caption: &str,
    numbers: &str,
) {
    let _ = writeln!(h, "<figure class=\"chart\" id=\"{id}\">");
    match svg {
        Ok(svg) => h.push_str(strip_xml_decl(&svg)),
        Err(e) => {
            let _ = write!(
                h,
                "<p class=\"sev-fail\">chart could not be drawn: {}</p>",
                esc(&e.to_string())
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
