//! [`StepId`]: the one name of a step, `campaign/name` (or a bare `name` for an ad-hoc
//! `loadgen attack` step), used by plans, findings, report rows and `--steps` filters alike, and
//! the glob that selects steps by it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A step's identity. Serialised as the string `campaign/name` (or `name`), as run.json always
/// stored it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepId {
    campaign: Option<String>,
    name: String,
}

impl StepId {
    /// The id of step `name` of `campaign` (`None` for an ad-hoc attack).
    pub fn new(campaign: Option<&str>, name: &str) -> StepId {
        StepId {
            campaign: campaign.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// Reads `campaign/name` or a bare `name` (names never hold a `/`).
    pub fn parse(s: &str) -> StepId {
        match s.split_once('/') {
            Some((c, n)) => StepId::new(Some(c), n),
            None => StepId::new(None, s),
        }
    }

    pub fn campaign(&self) -> Option<&str> {
        self.campaign.as_deref()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether a finding about `self` concerns the step `step`: the same id, or — in runs saved
    /// before ids were typed, whose Prometheus findings held the bare step name — the same name
    /// with no campaign given.
    pub fn concerns(&self, step: &StepId) -> bool {
        self == step || (self.campaign.is_none() && self.name == step.name)
    }

    /// Whether a `--steps`/threshold glob selects this step: on `campaign/name` or on `name`.
    pub fn matches(&self, pattern: &str) -> bool {
        glob_match(pattern, &self.to_string()) || glob_match(pattern, &self.name)
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.campaign {
            Some(c) => write!(f, "{c}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl PartialEq<str> for StepId {
    fn eq(&self, other: &str) -> bool {
        *self == StepId::parse(other)
    }
}

impl PartialEq<&str> for StepId {
    fn eq(&self, other: &&str) -> bool {
        *self == StepId::parse(other)
    }
}

impl Serialize for StepId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(StepId::parse(&String::deserialize(d)?))
    }
}

/// Glob match where `*` matches any run of characters (including `/`) and everything else
/// matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(tail) = text.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob_match(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_as_the_string_run_json_always_held() {
        let id = StepId::new(Some("A"), "r1-200rps");
        assert_eq!(id.to_string(), "A/r1-200rps");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"A/r1-200rps\"");
        assert_eq!(serde_json::from_str::<StepId>(&json).unwrap(), id);
        assert_eq!(StepId::parse("attack"), StepId::new(None, "attack"));
        assert_eq!(id, "A/r1-200rps");
    }

    #[test]
    fn globs_match_the_full_id_or_the_bare_name() {
        let id = StepId::new(Some("B"), "r2-300rps");
        assert!(id.matches("B/*"));
        assert!(id.matches("r2-*"));
        assert!(id.matches("*300*"));
        assert!(!id.matches("A/*"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b", "ac"));
    }
}
