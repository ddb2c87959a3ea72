//! Scenario errors and the positions they point at: every error about the file names the file,
//! the line and column (1-based, columns in characters) and the dotted key, so a user can go
//! straight to the mistake. Byte spans from the TOML parser are translated here.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a scenario could not be turned into a plan (or a plan could not be narrowed).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The scenario file itself could not be read.
    #[error("{path}: cannot read scenario: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A mistake at a position of the file.
    #[error("{path}:{line}:{column}: {}{message}", key_prefix(key))]
    At {
        path: String,
        line: usize,
        column: usize,
        /// Dotted key path, e.g. `campaign.step.rate` (`None` when the parser could not tell).
        key: Option<String>,
        message: String,
    },
    /// `--steps` selected nothing.
    #[error("no step matches '{filter}' (steps are named campaign/name, e.g. '{example}')")]
    NoStepMatches { filter: String, example: String },
    /// `--time-scale` out of range.
    #[error("time scale must be a finite number > 0, got {0}")]
    TimeScale(f64),
}

fn key_prefix(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("key '{k}': "),
        None => String::new(),
    }
}

/// The scenario text with its path, able to turn byte spans into positioned errors.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    pub text: String,
}

impl SourceText {
    pub fn new(path: &Path, text: String) -> Self {
        Self {
            path: path.to_path_buf(),
            text,
        }
    }

    /// The directory relative paths in the file (`@body`, `binary`) are resolved against.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        // Offsets from the parser are char boundaries; guard anyway so a bad span can't panic.
        let mut start = offset;
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        let before = &self.text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// An error at `span` about `key`.
    pub fn error(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ScenarioError {
        let (line, column) = self.line_col(span.start);
        ScenarioError::At {
            path: self.path.display().to_string(),
            line,
            column,
            key: Some(key.to_string()),
            message: one_line(&message.into()),
        }
    }

    /// Converts a parser/deserializer error, recovering the key path the parser knows about.
    pub fn from_toml(&self, err: &toml::de::Error) -> ScenarioError {
        let span = err.span().unwrap_or(0..0);
        let (line, column) = self.line_col(span.start);
        let raw = err.message().trim().to_string();
        let mut key = parser_keys(err);
        let mut message = one_line(&raw);
        if let Some(field) = backticked_after(&raw, "unknown field ") {
            key = Some(join_key(key.as_deref(), &field));
            message = format!(
                "unknown key{}",
                raw.split_once(", expected")
                    .map(|(_, rest)| format!(", expected {}", one_line(rest)))
                    .unwrap_or_default()
            );
            if let Some(hint) = top_level_hint(key.as_deref(), &field) {
                message.push_str(hint);
            }
        } else if let Some(field) = backticked_after(&raw, "missing field ") {
            key = Some(join_key(key.as_deref(), &field));
            message = "required key is missing".to_string();
        } else if let Some(variant) = backticked_after(&raw, "unknown variant ") {
            let expected = raw
                .split_once(", expected ")
                .map(|(_, rest)| one_line(rest))
                .unwrap_or_default();
            message = format!("expected {expected}, got \"{variant}\"");
        } else if key.is_none() {
            key = key_on_line(&self.text, span.start);
        }
        ScenarioError::At {
            path: self.path.display().to_string(),
            line,
            column,
            key,
            message,
        }
    }
}

/// The dotted key path the deserializer attached to an error. `toml` keeps it private but
/// prints it (`in \`a.b\``) when the error has no input to quote, so render it that way.
fn parser_keys(err: &toml::de::Error) -> Option<String> {
    let mut bare = err.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    let last = shown.trim_end().lines().last()?;
    let keys = last.strip_prefix("in `")?.strip_suffix('`')?;
    (!keys.is_empty()).then(|| keys.to_string())
}

/// TOML puts every key written after a `[table]` header into that table; top-level keys
/// written late are the classic slip, so say so.
fn top_level_hint(parent: Option<&str>, field: &str) -> Option<&'static str> {
    const TOP: [&str; 3] = ["name", "description", "counter_site"];
    (parent.is_some() && TOP.contains(&field))
        .then_some(" (this is a top-level key: write it before the first [table] header)")
}

fn join_key(parent: Option<&str>, field: &str) -> String {
    match parent {
        Some(p) => format!("{p}.{field}"),
        None => field.to_string(),
    }
}

/// `name` in "prefix`name`…".
fn backticked_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split_once('`').map(|(name, _)| name.to_string())
}

/// For syntax errors the parser knows no key: take the key written on the offending line, or
/// the table header it belongs to, so the message still says where in the structure it is.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line_end = text[offset..]
        .find('\n')
        .map(|i| offset + i)
        .unwrap_or(text.len());
    let line = text[line_start..line_end].trim();
    if let Some((k, _)) = line.split_once('=') {
        let k = k.trim().trim_matches('"');
        if !k.is_empty() && !k.starts_with('[') {
            return Some(k.to_string());
        }
    }
    let header = line.trim_start_matches('[').trim_end_matches(']').trim();
    (line.starts_with('[') && !header.is_empty()).then(|| header.to_string())
}

fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
