//! Checked scalar values of a scenario (positive rates, counts ≥ 1, durations, CPU limits).
//! They validate while deserialising, so the parser attaches the exact span and key to the
//! error and every range mistake is reported like a type mistake: `expected …, got …`.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A finite number > 0 (rates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Positive(pub f64);

/// A finite number ≥ 0 (the start rate of a ramp).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NonNegative(pub f64);

/// A finite number (threshold bounds may be anything, e.g. a ratio or milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

/// An integer ≥ 1 (replicas, in-flight caps, connections, requests); counts that size real
/// resources are narrowed to `u32` with [`Count::small`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u64);

/// A duration written as a humantime string (`"10s"`, `"5.5ms"`, `"1m30s"`); may be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// A duration > 0 (the length of a step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositiveDur(pub Duration);

/// A CPU limit in cores (> 0), or `"none"` for no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuLimit(pub Option<f64>);

fn fmt_num(v: f64) -> String {
    format!("{v}")
}

macro_rules! float_value {
    ($ty:ident, $expect:literal, $ok:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        let ok: fn(f64) -> bool = $ok;
                        if v.is_finite() && ok(v) {
                            Ok($ty(v))
                        } else {
                            Err(E::custom(format!(
                                "expected {}, got {}",
                                $expect,
                                fmt_num(v)
                            )))
                        }
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        self.visit_f64(v as f64)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        self.visit_f64(v as f64)
                    }
                }
                d.deserialize_f64(V)
            }
        }
    };
}

float_value!(Positive, "a number > 0", |v| v > 0.0);
float_value!(NonNegative, "a number >= 0", |v| v >= 0.0);
float_value!(Number, "a number", |_| true);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECT: &str = "an integer >= 1";
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECT)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                if v >= 1 {
                    Ok(Count(v as u64))
                } else {
                    Err(E::custom(format!("expected {EXPECT}, got {v}")))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                if v >= 1 {
                    Ok(Count(v))
                } else {
                    Err(E::custom(format!("expected {EXPECT}, got {v}")))
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
                Err(E::custom(format!("expected {EXPECT}, got {}", fmt_num(v))))
            }
        }
        d.deserialize_u64(V)
    }
}

impl Count {
    /// The value as `u32`, for counts that size real resources (replicas, connections).
    pub fn small(self) -> Option<u32> {
        u32::try_from(self.0).ok()
    }
}

fn parse_duration<E: de::Error>(s: &str) -> Result<Duration, E> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        E::custom(format!(
            "expected a duration such as \"10s\", \"5.5ms\" or \"1m30s\", got \"{s}\" ({e})"
        ))
    })
}

macro_rules! duration_value {
    ($ty:ident, $nonzero:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("a duration string such as \"10s\"")
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        let d = parse_duration(s)?;
                        if $nonzero && d.is_zero() {
                            return Err(E::custom(format!("expected a duration > 0, got \"{s}\"")));
                        }
                        Ok($ty(d))
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

duration_value!(Dur, false);
duration_value!(PositiveDur, true);

impl<'de> Deserialize<'de> for CpuLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECT: &str = "a number of cores > 0 or \"none\"";
        impl Visitor<'_> for V {
            type Value = CpuLimit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECT)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<CpuLimit, E> {
                if v.is_finite() && v > 0.0 {
                    Ok(CpuLimit(Some(v)))
                } else {
                    Err(E::custom(format!("expected {EXPECT}, got {}", fmt_num(v))))
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<CpuLimit, E> {
                self.visit_f64(v as f64)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<CpuLimit, E> {
                self.visit_f64(v as f64)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<CpuLimit, E> {
                if s == "none" {
                    Ok(CpuLimit(None))
                } else {
                    Err(E::custom(format!("expected {EXPECT}, got \"{s}\"")))
                }
            }
        }
        d.deserialize_any(V)
    }
}
