//! A deliberate, optional regression (`--regression`): genuine extra work per click, off by
//! default, so a capacity check can be shown catching a real slowdown of the click handler —
//! not a sleep or a changed `--cost`, which would be the harness measuring itself. Two kinds,
//! each a cost a real change could add: re-parsing and re-validating the click's JSON N more
//! times (CPU on the click path), or N more store round trips (with Redis, N more
//! `SISMEMBER` commands over the wire, past the cache of known sites). The work done is counted in `polymetrie_regression_work_total`, so
//! a test sees it was done without timing anything.

use std::str::FromStr;

/// The most extra work units one click may be given: past it a click takes seconds, which is
/// an outage, not a regression to measure.
pub const MAX_UNITS: u32 = 10_000;

/// The extra work each click does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Regression {
    /// No extra work (the default).
    #[default]
    None,
    /// Parse the click's body and validate it again, this many more times.
    JsonRevalidate(u32),
    /// Ask the store whether the click's site exists, this many more times, past the cache
    /// that spares the click path that round trip (with Redis, `SISMEMBER` each time).
    StoreRoundtrips(u32),
}

impl Regression {
    /// Work units per click: what `polymetrie_regression_work_total` grows by.
    pub fn units(self) -> u32 {
        match self {
            Regression::None => 0,
            Regression::JsonRevalidate(n) | Regression::StoreRoundtrips(n) => n,
        }
    }

    pub fn is_none(self) -> bool {
        self == Regression::None
    }
}

/// Why a `--regression` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegressionError {
    #[error(
        "unknown regression {0:?}: expected `none`, `json-revalidate:N` or `store-roundtrips:N`"
    )]
    Unknown(String),
    #[error("regression {0:?}: N must be a whole number from 1 to {MAX_UNITS}")]
    Count(String),
}

impl FromStr for Regression {
    type Err = RegressionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "none" {
            return Ok(Regression::None);
        }
        let (kind, count) = s
            .split_once(':')
            .ok_or_else(|| RegressionError::Unknown(s.to_string()))?;
        let make = match kind {
            "json-revalidate" => Regression::JsonRevalidate,
            "store-roundtrips" => Regression::StoreRoundtrips,
            _ => return Err(RegressionError::Unknown(s.to_string())),
        };
        let n = count
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_UNITS).contains(n))
            .ok_or_else(|| RegressionError::Count(s.to_string()))?;
        Ok(make(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_refuses_the_rest() {
        assert_eq!("none".parse(), Ok(Regression::None));
        assert_eq!(
            "json-revalidate:20".parse(),
            Ok(Regression::JsonRevalidate(20))
        );
        assert_eq!(
            "store-roundtrips:3".parse(),
            Ok(Regression::StoreRoundtrips(3))
        );
        assert!(matches!(
            "sleep:5".parse::<Regression>(),
            Err(RegressionError::Unknown(_))
        ));
        assert!(matches!(
            "json-revalidate".parse::<Regression>(),
            Err(RegressionError::Unknown(_))
        ));
        for bad in [
            "json-revalidate:0",
            "json-revalidate:-1",
            "store-roundtrips:10001",
        ] {
            assert!(
                matches!(bad.parse::<Regression>(), Err(RegressionError::Count(_))),
                "{bad}"
            );
        }
        assert_eq!(Regression::JsonRevalidate(7).units(), 7);
        assert!(Regression::default().is_none());
    }
}
