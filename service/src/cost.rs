//! The emulated per-click work: CPU time burnt on the calling thread's own CPU clock, so that
//! a CFS quota, another process on the core or a slow machine stretches it in wall time
//! exactly as it would stretch real request handling.

use std::time::Duration;

/// CPU time consumed so far by the calling thread.
#[allow(unsafe_code)]
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec owned by this frame, and
    // CLOCK_THREAD_CPUTIME_ID is supported on every Linux; the call writes only `ts`.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Spins until the calling thread has used `cost` of CPU time. Blocking: call it from a
/// blocking thread, never from an async worker.
pub fn burn(cost: Duration) {
    if cost.is_zero() {
        return;
    }
    let start = thread_cpu_time();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    loop {
        // ~1 µs of arithmetic between clock reads keeps the clock's own cost negligible.
        for _ in 0..512 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
        }
        std::hint::black_box(x);
        if thread_cpu_time().saturating_sub(start) >= cost {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_uses_at_least_the_cost_in_thread_cpu_time() {
        let before = thread_cpu_time();
        burn(Duration::from_millis(5));
        let used = thread_cpu_time() - before;
        assert!(used >= Duration::from_millis(5), "{used:?}");
        assert!(used < Duration::from_millis(50), "{used:?}");
    }
}
