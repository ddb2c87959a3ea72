//! Which I/O backend runs a step: io_uring ([`crate::uring`]) or epoll (tokio's reactor), as
//! `--io auto|uring|epoll` asks. `auto` takes io_uring where this process may set up a ring
//! with every operation the backend uses, and epoll where it is refused (seccomp, the
//! `kernel.io_uring_disabled` sysctl, an old kernel) or where the step is not plain HTTP/1.1;
//! the record says which ran and why not the other. Chosen on the engine thread, which the
//! ring then belongs to.

use std::fmt;
use std::str::FromStr;

use crate::uring::Ring;

/// The backend a step asks for (`io = "auto" | "uring" | "epoll"` in a scenario).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IoMode {
    /// io_uring where it works, else epoll.
    #[default]
    Auto,
    /// io_uring or nothing: a step that cannot have it does not run.
    Uring,
    /// tokio's reactor (epoll), as before io_uring.
    Epoll,
}

impl IoMode {
    pub fn name(self) -> &'static str {
        match self {
            IoMode::Auto => "auto",
            IoMode::Uring => "uring",
            IoMode::Epoll => "epoll",
        }
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An I/O backend name that is none of `auto`, `uring`, `epoll`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown I/O backend {0:?}: expected auto, uring or epoll")]
pub struct UnknownIoMode(pub String);

impl FromStr for IoMode {
    type Err = UnknownIoMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(IoMode::Auto),
            "uring" | "io_uring" => Ok(IoMode::Uring),
            "epoll" => Ok(IoMode::Epoll),
            other => Err(UnknownIoMode(other.into())),
        }
    }
}

/// The backend that runs the step.
pub(crate) enum Chosen {
    Uring(Ring),
    /// Epoll, and why not io_uring when it was not asked for (`None`: `--io epoll`).
    Epoll(Option<String>),
}

/// Picks the backend: `not_plain` says why the step cannot use io_uring at all (TLS, HTTP/2).
/// `Err` only for `uring` asked for and impossible: why.
pub(crate) fn choose(mode: IoMode, not_plain: Option<&'static str>) -> Result<Chosen, String> {
    match (mode, not_plain) {
        (IoMode::Epoll, _) => Ok(Chosen::Epoll(None)),
        (IoMode::Uring, Some(why)) => Err(why.into()),
        (IoMode::Auto, Some(why)) => Ok(Chosen::Epoll(Some(why.into()))),
        (IoMode::Uring, None) => Ring::new().map(Chosen::Uring).map_err(|e| e.to_string()),
        (IoMode::Auto, None) => Ok(match Ring::new() {
            Ok(ring) => Chosen::Uring(ring),
            Err(e) => Chosen::Epoll(Some(e.to_string())),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_name_themselves() {
        for m in [IoMode::Auto, IoMode::Uring, IoMode::Epoll] {
            assert_eq!(m.name().parse::<IoMode>(), Ok(m));
        }
        assert!("kqueue".parse::<IoMode>().is_err());
    }

    #[test]
    fn a_step_that_is_not_plain_http1_stays_on_epoll_and_says_why() {
        let why = Some("https");
        assert!(matches!(choose(IoMode::Auto, why), Ok(Chosen::Epoll(Some(w))) if w == "https"));
        assert!(choose(IoMode::Uring, why).is_err());
        assert!(matches!(
            choose(IoMode::Epoll, None),
            Ok(Chosen::Epoll(None))
        ));
    }
}
