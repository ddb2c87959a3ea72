//! Scheduling of the generator: the engine thread's priority, and the one CPU a pinned shard
//! runs on ([`pin_to_cpu`]). Scheduling priority of the engine thread. Where the generator shares a machine with the
//! service (here: 2 cores), CPU-bound replicas otherwise keep the engine waiting on the run
//! queue — measured at ~1.3 ms a wake-up and 60–90 ms at p99 even at nice -10 — and steps turn
//! invalid for the generator's sake rather than tell anything about the target. The engine
//! sleeps between events and uses a few percent of a core at TD4 rates; the kernel's RT
//! throttling (`sched_rt_runtime_us`) still bounds it.

/// Real-time round-robin priority of the engine thread (the lowest, 1).
const ENGINE_RT_PRIORITY: i32 = 1;

/// Asks for SCHED_RR for the calling thread. `Err` (no CAP_SYS_NICE, e.g. in a pod that drops
/// every capability) leaves the default scheduling: not an error for the step, whose schedule
/// lag then says what it cost, and the caller records which one the engine ran at.
#[allow(unsafe_code)]
pub fn raise() -> Result<(), std::io::Error> {
    let param = libc::sched_param {
        sched_priority: ENGINE_RT_PRIORITY,
    };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call; pid 0 names
    // the calling thread, and the call has no other memory effects.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_RR, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Pins the calling process's thread — and so every thread it starts afterwards, the engine's
/// included — to `cpu`, as `taskset -c CPU` would: shards pinned one per CPU do not share a core.
pub fn pin_to_cpu(cpu: usize) -> Result<(), std::io::Error> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    rustix::thread::sched_setaffinity(None, &set).map_err(std::io::Error::from)
}
