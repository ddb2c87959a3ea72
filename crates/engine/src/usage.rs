//! Usage: the CPU time a thread or process consumed, read from `/proc` (user and system apart),
//! and the cores it may run on (its affinity). The attack measures its own engine thread with it
//! to tell whether the generator, not the target, was the bottleneck.

use std::time::{Duration, Instant};

/// Kernel clock ticks per second for `/proc/*/stat` times. Linux reports USER_HZ = 100 on every
/// architecture it exports to user space; reading it with `sysconf` would need `unsafe`.
const USER_HZ: f64 = 100.0;

/// CPU time consumed so far, user and system apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuTimes {
    pub user_s: f64,
    pub system_s: f64,
}

impl CpuTimes {
    /// Consumption between `earlier` and `self`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user_s: (self.user_s - earlier.user_s).max(0.0),
            system_s: (self.system_s - earlier.system_s).max(0.0),
        }
    }

    pub fn total_s(self) -> f64 {
        self.user_s + self.system_s
    }
}

/// Parses `utime` and `stime` (fields 14 and 15) out of a `/proc/*/stat` line. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat(line: &str) -> Option<CpuTimes> {
    let rest = &line[line.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ")" come field 3 (state) onwards: utime is the 12th of those, stime the 13th.
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some(CpuTimes {
        user_s: utime / USER_HZ,
        system_s: stime / USER_HZ,
    })
}

/// CPU used so far by the calling thread; `None` when `/proc` cannot be read.
pub fn thread_cpu() -> Option<CpuTimes> {
    parse_stat(&std::fs::read_to_string("/proc/thread-self/stat").ok()?)
}

/// CPU used so far by the whole process; `None` when `/proc` cannot be read.
pub fn process_cpu() -> Option<CpuTimes> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Parses a cpu list such as `0-3,8,10-11` into a count of cores.
pub fn count_cpu_list(list: &str) -> Option<u32> {
    let mut n = 0;
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                n += b.checked_sub(a)? + 1;
            }
            None => {
                part.trim().parse::<u32>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

/// Cores the calling thread may run on (`Cpus_allowed_list` of its affinity).
pub fn affinity_cores() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    count_cpu_list(line)
}

/// A CPU meter for the calling thread: started once, read at the end.
#[derive(Debug, Clone, Copy)]
pub struct ThreadMeter {
    start: Option<CpuTimes>,
    wall: Instant,
}

impl ThreadMeter {
    /// Starts measuring the calling thread.
    pub fn start() -> Self {
        Self {
            start: thread_cpu(),
            wall: Instant::now(),
        }
    }

    /// CPU used by the calling thread (must be the same one) since start, and the wall time.
    pub fn read(&self) -> (Option<CpuTimes>, Duration) {
        let used = match (self.start, thread_cpu()) {
            (Some(a), Some(b)) => Some(b.since(a)),
            _ => None,
        };
        (used, self.wall.elapsed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_command_name() {
        let line = "1234 (we ird) (x)) S 1 1 1 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 0 0";
        let t = parse_stat(line).unwrap();
        assert_eq!(t.user_s, 2.5);
        assert_eq!(t.system_s, 0.75);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(count_cpu_list("0-3,8,10-11\n"), Some(7));
        assert_eq!(count_cpu_list("1"), Some(1));
        assert_eq!(count_cpu_list("3-1"), None);
    }

    #[test]
    fn this_thread_is_measurable() {
        assert!(thread_cpu().is_some());
        assert!(affinity_cores().unwrap() >= 1);
    }
}
