//! The renderer of one JSON log line ([`render_line`]) and its [`Level`]. Every emitter goes
//! through it — the tracing layer and the CLI's campaign events alike — so a log pipeline sees
//! one shape whoever wrote the line (ARCHITECTURE.md rule 13).
//!
//! Key order is fixed (`time`, `level`, `message`, `target`, then `step` and `replica` when
//! the fields hold them, then the other fields by name) because people read these lines too;
//! escaping is serde_json's, so a quote or a newline in a message can never split a line.

use std::time::SystemTime;

use serde_json::{Map, Value};

pub const TIME: &str = "time";
pub const LEVEL: &str = "level";
pub const MESSAGE: &str = "message";
pub const TARGET: &str = "target";
pub const STEP: &str = "step";
pub const REPLICA: &str = "replica";

/// Keys the renderer fills itself: a field of the same name is kept as `field.NAME`, so it
/// can neither overwrite them nor make a duplicate key (which JSON readers resolve
/// differently).
pub const RESERVED: [&str; 4] = [TIME, LEVEL, MESSAGE, TARGET];

/// Stable keys taken from the fields when a field holds them, written right after the
/// reserved ones.
const KNOWN: [&str; 2] = [STEP, REPLICA];

/// How a field colliding with a reserved key is renamed.
const RENAMED_PREFIX: &str = "field.";

/// A line's severity, written lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

impl From<tracing::Level> for Level {
    fn from(l: tracing::Level) -> Level {
        match l {
            tracing::Level::ERROR => Level::Error,
            tracing::Level::WARN => Level::Warn,
            tracing::Level::INFO => Level::Info,
            tracing::Level::DEBUG => Level::Debug,
            tracing::Level::TRACE => Level::Trace,
        }
    }
}

/// One log line (no line ending): the stable keys, then `fields` flattened beside them.
/// A field named `step` or `replica` becomes that stable key; one named like a reserved key
/// (`time`, `level`, `message`, `target`) is renamed `field.NAME`.
pub fn render_line(
    time: SystemTime,
    level: Level,
    target: &str,
    message: &str,
    fields: Map<String, Value>,
) -> String {
    let mut fields = renamed(fields);
    let mut out = String::with_capacity(160 + 32 * fields.len());
    out.push('{');
    let stamp = humantime::format_rfc3339_micros(time).to_string();
    entry(&mut out, TIME, &Value::String(stamp));
    entry(&mut out, LEVEL, &Value::from(level.as_str()));
    entry(&mut out, MESSAGE, &Value::from(message));
    entry(&mut out, TARGET, &Value::from(target));
    for key in KNOWN {
        if let Some(v) = fields.remove(key) {
            entry(&mut out, key, &v);
        }
    }
    for (k, v) in &fields {
        entry(&mut out, k, v);
    }
    out.push('}');
    out
}

/// `"key":value`, after a comma unless it is the first.
fn entry(out: &mut String, key: &str, value: &Value) {
    if out.len() > 1 {
        out.push(',');
    }
    // Value's Display is its compact JSON: escaped strings, non-finite numbers impossible.
    out.push_str(&Value::from(key).to_string());
    out.push(':');
    out.push_str(&value.to_string());
}

/// The fields with every reserved name moved to `field.NAME` (prefixed again while that is
/// taken too, so no field is ever lost).
fn renamed(fields: Map<String, Value>) -> Map<String, Value> {
    let mut clashing = Vec::new();
    let mut kept = Map::new();
    for (k, v) in fields {
        if RESERVED.contains(&k.as_str()) {
            clashing.push((k, v));
        } else {
            kept.insert(k, v);
        }
    }
    for (k, v) in clashing {
        let free = free_name(&kept, &k);
        kept.insert(free, v);
    }
    kept
}

/// Sets the stable `key` to `value`, moving a field already named so out of the way
/// (`field.NAME`): for a key the emitter owns, such as a process's `replica` name.
pub fn insert_stable(fields: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(theirs) = fields.remove(key) {
        let free = free_name(fields, key);
        fields.insert(free, theirs);
    }
    fields.insert(key.to_string(), value);
}

/// `field.KEY`, prefixed again while that is taken, so a renamed field never replaces one.
fn free_name(fields: &Map<String, Value>, key: &str) -> String {
    let mut name = format!("{RENAMED_PREFIX}{key}");
    while fields.contains_key(&name) {
        name = format!("{RENAMED_PREFIX}{name}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at() -> SystemTime {
        // 2026-12-01T10:00:00.123456Z
        UNIX_EPOCH + Duration::from_micros(1_796_119_200_123_456)
    }

    fn parse(line: &str) -> Map<String, Value> {
        assert!(!line.contains('\n'), "one line: {line:?}");
        match serde_json::from_str(line).unwrap() {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn a_line_is_one_object_with_the_stable_keys_first() {
        let mut fields = Map::new();
        fields.insert("rate_rps".into(), Value::from(250.0));
        fields.insert("replica".into(), Value::from("polymetrie-7c9d"));
        fields.insert("step".into(), Value::from("A/s1"));
        fields.insert("p99_ms".into(), Value::Null);
        let line = render_line(at(), Level::Warn, "loadgen::campaign", "slow", fields);
        assert_eq!(
            line,
            r#"{"time":"2026-12-01T10:00:00.123456Z","level":"warn","message":"slow","target":"loadgen::campaign","step":"A/s1","replica":"polymetrie-7c9d","p99_ms":null,"rate_rps":250.0}"#
        );
        let m = parse(&line);
        assert_eq!(m.len(), 8);
    }

    #[test]
    fn quotes_newlines_and_control_characters_in_a_message_are_escaped() {
        let message = "say \"hi\"\nthen\tleave\r\u{1b}[2K \\ done";
        let mut fields = Map::new();
        fields.insert("cause".into(), Value::from("a\nb\"c"));
        let line = render_line(at(), Level::Error, "t", message, fields);
        let m = parse(&line);
        assert_eq!(m["message"], message);
        assert_eq!(m["cause"], "a\nb\"c");
        assert!(!line.chars().any(char::is_control), "{line:?}");
    }

    #[test]
    fn fields_named_like_reserved_keys_are_renamed_never_lost() {
        let mut fields = Map::new();
        for k in ["time", "level", "message", "target"] {
            fields.insert(k.into(), Value::from(format!("mine-{k}")));
        }
        fields.insert("field.time".into(), Value::from("already there"));
        let m = parse(&render_line(at(), Level::Info, "t", "real", fields));
        assert_eq!(m["message"], "real");
        assert_eq!(m["level"], "info");
        assert_eq!(m["target"], "t");
        assert_eq!(m["time"], "2026-12-01T10:00:00.123456Z");
        assert_eq!(m["field.message"], "mine-message");
        assert_eq!(m["field.level"], "mine-level");
        assert_eq!(m["field.target"], "mine-target");
        assert_eq!(m["field.time"], "already there");
        assert_eq!(m["field.field.time"], "mine-time");
    }

    #[test]
    fn levels_are_lowercase_and_follow_tracing() {
        let all = [
            (tracing::Level::ERROR, "error"),
            (tracing::Level::WARN, "warn"),
            (tracing::Level::INFO, "info"),
            (tracing::Level::DEBUG, "debug"),
            (tracing::Level::TRACE, "trace"),
        ];
        for (t, s) in all {
            assert_eq!(Level::from(t).as_str(), s);
        }
    }
}
