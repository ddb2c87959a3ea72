//! The report in a real headless Chromium: `report.html` of the fixture loads from `file://`,
//! every chart's `<svg>` is in the DOM, and the browser logs no console message (the page has no
//! script, so any console line means something failed to load or parse). A negative control
//! proves the console scan would catch an error. Leaves `target/report-screenshot.png` as an
//! artifact to look at.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use loadgen_model::result::CampaignResult;

use crate::common::{self, external};

/// Bound on one Chromium invocation (it takes ~2 s on an idle machine).
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(40);

/// A scratch dir `loadgen-chromium-<tag>-…`, removed on drop.
fn tempdir(tag: &str) -> tempfile::TempDir {
    common::tempdir(&format!("chromium-{tag}"))
}

/// Runs chromium headless on `page` with `extra` flags, bounded by [`CHROMIUM_TIMEOUT`].
fn chromium(bin: &Path, page: &Path, extra: &[&str], profile: &Path) -> Output {
    let mut child = Command::new(bin)
        .args(crate::common::cdp::HEADLESS)
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    // Read the pipes on threads so a large DOM cannot block the child while we poll.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let deadline = Instant::now() + CHROMIUM_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: t_out.join().unwrap().unwrap(),
        stderr: t_err.join().unwrap().unwrap(),
    }
}

/// Console lines and uncaught errors in Chromium's log.
fn console_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect()
}

#[test]
fn report_loads_in_headless_chromium_with_every_chart() {
    let _serial = common::serial::lock_blocking();
    let Some(bin) = external::binary("chromium", "chromium") else {
        return;
    };
    let text =
        std::fs::read_to_string(common::manifest_dir().join("tests/fixtures/run.json")).unwrap();
    let result: CampaignResult = serde_json::from_str(&text).unwrap();
    let dir = tempdir("report");
    let dir = dir.path();
    std::fs::write(dir.join("run.json"), &text).unwrap();
    let paths = loadgen_report::write_outputs(&result, dir).unwrap();
    let html = std::fs::read_to_string(&paths.report_html).unwrap();
    let charts = html.matches("<figure class=\"chart\"").count();
    assert!(
        charts >= 6 + result.steps.len(),
        "expected the 6 run charts and one timeline per step, found {charts} figures"
    );

    // Negative control: the scan sees a console error when there is one.
    let neg = dir.join("negative.html");
    std::fs::write(
        &neg,
        "<!DOCTYPE html><html><body><script>throw new Error('control')</script></body></html>",
    )
    .unwrap();
    let profile = tempdir("profile-neg");
    let o = chromium(&bin, &neg, &["--dump-dom"], profile.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !console_problems(&err).is_empty(),
        "console scan is blind: chromium logged no console line for a throwing page:\n{err}"
    );

    let profile = tempdir("profile-dom");
    let o = chromium(&bin, &paths.report_html, &["--dump-dom"], profile.path());
    let dom = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "chromium failed: {err}");
    assert!(
        console_problems(&err).is_empty(),
        "console messages: {:?}",
        console_problems(&err)
    );
    assert!(
        dom.contains("Capacity report: td4"),
        "page did not render: {dom:.500}"
    );
    // Every chart figure made it into the DOM with its SVG (parsed as SVG, not text).
    let mut pos = 0;
    let mut seen = 0;
    while let Some(i) = dom[pos..].find("<figure class=\"chart\"") {
        let start = pos + i;
        let end = start + dom[start..].find("</figure>").expect("figure closes");
        let fig = &dom[start..end];
        assert!(
            fig.contains("<svg") && fig.contains("</svg>") && fig.contains("<text"),
            "a chart figure has no svg: {fig:.300}"
        );
        seen += 1;
        pos = end;
    }
    assert_eq!(seen, charts, "every chart of report.html is in the DOM");

    let shot = common::manifest_dir().join("../target/report-screenshot.png");
    // `target/` of the checkout is absent when builds go to CARGO_TARGET_DIR elsewhere.
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    let profile = tempdir("profile-shot");
    let o = chromium(
        &bin,
        &paths.report_html,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,4200",
            "--hide-scrollbars",
        ],
        profile.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
    eprintln!("screenshot: {}", shot.display());
}
