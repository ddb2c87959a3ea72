//! [`LogFormat`]: how a binary writes its log on stderr, `text` (the human format, the
//! default) or `json` (one [`crate::line`] object per line, for a log pipeline).

use std::fmt;
use std::str::FromStr;

/// The value of `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// What a person reads on a terminal (tracing's own format, the CLI's progress lines).
    #[default]
    Text,
    /// One JSON object per line, stable keys (docs/logs.md).
    Json,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    pub fn is_json(self) -> bool {
        self == LogFormat::Json
    }
}

/// A `--log-format` value that is neither `text` nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}: expected `text` or `json`")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Case-insensitive: an environment variable set to `JSON` means the same thing.
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(UnknownLogFormat(s.to_string())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_parse_and_print_back_and_anything_else_is_named() {
        for f in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(f.to_string().parse::<LogFormat>(), Ok(f));
        }
        assert_eq!("JSON".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(LogFormat::default(), LogFormat::Text);
        let e = "logfmt".parse::<LogFormat>().unwrap_err().to_string();
        assert_eq!(
            e,
            r#"unknown log format "logfmt": expected `text` or `json`"#
        );
    }
}
