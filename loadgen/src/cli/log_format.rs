//! The log format this process writes on stderr (`--log-format text|json`, chosen once in
//! `main`, like the tracing subscriber it also picks) and the CLI's own stderr lines in it: the
//! closing paths (`results:`, `report:`), the reasons for exit 1, an interruption, why a
//! command could not run. Under `text` each is the line it always was; under `json` one
//! `loadgen_logline` line whose message holds the same words, so a log pipeline reads every
//! line of a run alike. Tables and files on stdout never change.

use std::io::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::SystemTime;

use loadgen_logline::{render_line, Level, LogFormat};
use serde_json::{json, Map, Value};

/// The format, process-wide like the tracing subscriber: set once by `main`, before any
/// command runs; unset (unit tests) reads as `text`.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// The `target` of the CLI's own lines.
const TARGET: &str = "loadgen::cli";

/// Records the format chosen on the command line (the first call wins).
pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
}

/// Whether stderr carries JSON lines.
pub fn json() -> bool {
    FORMAT.get().is_some_and(|f| f.is_json())
}

/// Writes one line (with its line ending) in one write, so lines of concurrent writers (the
/// tracing layer, the event sink) never interleave.
pub fn write_line(mut line: String) {
    line.push('\n');
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The text's words as a log message: ANSI sequences and control characters out (a line
/// break or tab becomes a space), no surrounding blanks.
pub fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // CSI: ESC [ parameters… final byte in @..~ (the terminal's line clearing).
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            '\n' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.trim().to_string()
}

/// One line of the CLI's own: `text` as is under `text`; under `json`, a line with `text`'s
/// words as its message, `event` and `fields` (an object) beside them.
pub fn say(level: Level, event: &str, text: &str, fields: Value) {
    if !json() {
        eprintln!("{text}");
        return;
    }
    write_line(cli_line(SystemTime::now(), level, event, text, fields));
}

/// The JSON form of [`say`], at `time`.
fn cli_line(time: SystemTime, level: Level, event: &str, text: &str, fields: Value) -> String {
    let mut map = match fields {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    map.insert("event".into(), Value::from(event));
    render_line(time, level, TARGET, &plain(text), map)
}

/// A file the command wrote: `LABELpath` (e.g. `results: out/run.json`), its path a field.
pub fn path_line(event: &str, label: &str, path: &Path) {
    let text = format!("{label}{}", path.display());
    say(Level::Info, event, &text, json!({ "path": path }));
}

/// Why a finished command exits 1. `text` prints the list as it always did (the caller);
/// `json` gives one warn line holding every reason, so this returns false under `text`.
pub fn exit_reasons(reasons: &[String]) -> bool {
    if !json() {
        return false;
    }
    let text = format!("exit 1 because: {}", reasons.join("; "));
    let fields = json!({ "reasons": reasons, "exit_code": 1 });
    write_line(cli_line(
        SystemTime::now(),
        Level::Warn,
        "exit_reasons",
        &text,
        fields,
    ));
    true
}

/// Why the command could not run (exit 2): the one line it always was, or an error line.
pub fn could_not_run(e: &anyhow::Error) {
    let text = format!("loadgen: {e:#}");
    say(
        Level::Error,
        "could_not_run",
        &text,
        json!({ "exit_code": 2 }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn plain_keeps_the_words_and_drops_what_only_a_terminal_reads() {
        assert_eq!(plain("\r\x1b[2K    1.0/3s  40 req/s\n"), "1.0/3s  40 req/s");
        assert_eq!(
            plain("\ninterrupted: stop\tnow\x07"),
            "interrupted: stop now"
        );
        assert_eq!(plain("ok — 100.0 %"), "ok — 100.0 %");
    }

    #[test]
    fn a_cli_line_is_one_object_with_the_event_and_its_fields() {
        let t = UNIX_EPOCH + Duration::from_secs(1_796_119_200);
        let line = cli_line(
            t,
            Level::Info,
            "results",
            "results: out/run.json",
            json!({ "path": "out/run.json" }),
        );
        assert_eq!(
            line,
            r#"{"time":"2026-12-01T10:00:00.000000Z","level":"info","message":"results: out/run.json","target":"loadgen::cli","event":"results","path":"out/run.json"}"#
        );
    }
}
