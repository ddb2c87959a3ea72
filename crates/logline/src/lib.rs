//! The one JSON log line of the workspace (`--log-format json` of `loadgen` and `polymetrie`):
//! one object per line, the stable keys `time` (RFC 3339 UTC, microseconds), `level`
//! (lowercase), `message` and `target` first, then `step` and `replica` when known, and every
//! other field flattened beside them (a field named like a key the renderer fills itself is
//! kept as `field.NAME`). docs/logs.md describes the format for whoever ships it.
//!
//! Modules, each importing only those listed after it (ARCHITECTURE.md): [`layer`] (a
//! `tracing_subscriber` layer writing tracing events through the renderer), [`line`] (the
//! renderer, shared by every emitter so they cannot disagree on the shape), [`format`] (the
//! `text|json` choice).

pub mod format;
pub mod layer;
pub mod line;

pub use format::{LogFormat, UnknownLogFormat};
pub use layer::{install_json, JsonLayer};
pub use line::{render_line, Level};
