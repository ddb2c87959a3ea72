//! [`JsonLayer`]: a `tracing_subscriber` [`Layer`] that writes every event as one line of
//! [`crate::line`]. A span's fields are kept as JSON in its extensions when it opens (and
//! updated by `Span::record`), so an event inside a `step` span carries `step` without the
//! code that logs it repeating the step; the innermost span wins a name, the event's own fields
//! win over every span's.
//!
//! A layer rather than a `FormatEvent`: the fmt layer keeps span fields only as formatted text,
//! and flattening them as JSON values needs them structured.

use std::io::Write;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{span, Event, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::line::{self, insert_stable, render_line, Level};

/// Writes each event as one JSON line to what `make_writer` makes (stderr in the binaries).
pub struct JsonLayer<W> {
    make_writer: W,
    replica: Option<String>,
}

impl<W> JsonLayer<W>
where
    W: for<'a> MakeWriter<'a> + 'static,
{
    pub fn new(make_writer: W) -> Self {
        JsonLayer {
            make_writer,
            replica: None,
        }
    }

    /// Every line then carries `replica` = `name` (the process's identity, e.g. its pod's
    /// name); an event's own `replica` field is kept as `field.replica`.
    pub fn with_replica(mut self, name: Option<String>) -> Self {
        self.replica = name;
        self
    }
}

/// Makes `filter` then a [`JsonLayer`] on stderr the process's subscriber (with the `log`
/// crate's records routed through it, as `fmt().init()` does): what `--log-format json` means
/// in both binaries, in one place.
pub fn install_json(filter: tracing_subscriber::EnvFilter, replica: Option<String>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(filter)
        .with(JsonLayer::new(std::io::stderr).with_replica(replica))
        .init();
}

/// A span's fields, as JSON, in its extensions.
struct SpanFields(Map<String, Value>);

/// Records tracing fields as JSON values: numbers and booleans stay typed, `%x` and `?x` become
/// strings, a non-finite float `null`.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

/// Fields the `log` crate's records carry through tracing-log: the real target is the first,
/// the others say where in the source, which `target` already places well enough.
const LOG_TARGET: &str = "log.target";
const LOG_SOURCE: [&str; 3] = ["log.module_path", "log.file", "log.line"];

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'a> MakeWriter<'a> + 'static,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(f)) = span.extensions().get::<SpanFields>() {
                    fields.extend(f.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
        }
        let mut own = Map::new();
        event.record(&mut JsonVisitor(&mut own));
        let message = match own.remove(line::MESSAGE) {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let meta = event.metadata();
        let target = match own.remove(LOG_TARGET) {
            Some(Value::String(t)) => {
                for k in LOG_SOURCE {
                    own.remove(k);
                }
                t
            }
            _ => meta.target().to_string(),
        };
        fields.extend(own);
        if let Some(name) = &self.replica {
            insert_stable(&mut fields, line::REPLICA, Value::from(name.as_str()));
        }
        let level = Level::from(*meta.level());
        let mut text = render_line(SystemTime::now(), level, &target, &message, fields);
        text.push('\n');
        // One write per line, so lines of concurrent threads never interleave. A log that
        // cannot be written has nowhere to report it: the error is dropped, as tracing's own
        // fmt layer does.
        let _ = self
            .make_writer
            .make_writer_for(meta)
            .write_all(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// Runs `f` under a JSON layer (with `replica`) and returns the lines it logged, each
    /// checked to be one object with the stable keys.
    fn logged(replica: Option<&str>, f: impl FnOnce()) -> Vec<Map<String, Value>> {
        let out = Captured::default();
        let layer = JsonLayer::new(out.clone()).with_replica(replica.map(str::to_string));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| {
                let Ok(Value::Object(m)) = serde_json::from_str::<Value>(l) else {
                    panic!("not one JSON object: {l:?}");
                };
                for key in ["time", "level", "message", "target"] {
                    assert!(m[key].is_string(), "{key} in {l}");
                }
                humantime::parse_rfc3339(m["time"].as_str().unwrap()).expect("RFC 3339 time");
                m
            })
            .collect()
    }

    #[test]
    fn every_event_is_one_line_with_its_fields_flattened_and_escaped() {
        let lines = logged(None, || {
            tracing::info!("plain");
            tracing::warn!(
                rate_rps = 250.5,
                ok = true,
                sent = 12u64,
                error = %"refused",
                kind = ?Some(3),
                ratio = f64::NAN,
                "said \"late\"\nthen more"
            );
        });
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "plain");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["target"], "loadgen_logline::layer::tests");
        let w = &lines[1];
        assert_eq!(w["level"], "warn");
        assert_eq!(w["message"], "said \"late\"\nthen more");
        assert_eq!(w["rate_rps"], 250.5);
        assert_eq!(w["ok"], true);
        assert_eq!(w["sent"], 12);
        assert_eq!(w["error"], "refused");
        assert_eq!(w["kind"], "Some(3)");
        assert_eq!(w["ratio"], Value::Null);
        assert!(!w.contains_key("fields"), "flattened, never nested: {w:?}");
    }

    #[test]
    fn span_fields_appear_on_the_events_inside_and_later_records_count() {
        let lines = logged(None, || {
            let run = tracing::info_span!("run", step = "outer", scenario = "td4");
            let _run = run.enter();
            let step = tracing::info_span!("step", step = tracing::field::Empty, replicas = 2);
            step.record("step", "A/s1");
            step.in_scope(|| tracing::error!(step_time = 3, "inside"));
            tracing::info!("outside the step");
        });
        let inside = &lines[0];
        assert_eq!(inside["step"], "A/s1", "the innermost span wins");
        assert_eq!(inside["replicas"], 2);
        assert_eq!(inside["scenario"], "td4");
        assert_eq!(inside["step_time"], 3);
        assert_eq!(lines[1]["step"], "outer");
        assert!(!lines[1].contains_key("replicas"));
    }

    #[test]
    fn the_replica_name_is_on_every_line_and_colliding_fields_are_renamed() {
        let lines = logged(Some("polymetrie-7c9d"), || {
            tracing::info!(replica = 3, time = "noon", level = 9, target = "x", "hello");
            let _s = tracing::info_span!("conn", message = "span message").entered();
            tracing::debug!("in a span");
        });
        let l = &lines[0];
        assert_eq!(l["replica"], "polymetrie-7c9d");
        assert_eq!(l["field.replica"], 3);
        assert_eq!(l["field.time"], "noon");
        assert_eq!(l["field.level"], 9);
        assert_eq!(l["field.target"], "x");
        assert_eq!(l["message"], "hello");
        assert_eq!(lines[1]["message"], "in a span");
        assert_eq!(lines[1]["field.message"], "span message");
        assert_eq!(lines[1]["level"], "debug");
        assert_eq!(lines[1]["replica"], "polymetrie-7c9d");
    }
}
