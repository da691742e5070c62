//! CPU priority of the stages' threads, so that lookups get a core at once
//! while a replay keeps both cores busy: nice values and Linux's
//! `SCHED_IDLE` (the only `unsafe` of the binary, two libc calls).

use anyhow::Context;

/// Nice value of the throughput stages when the lookup API shares their
/// process: the lowest priority, so that lookups get a core at once.
const BACKGROUND_NICE: i32 = 19;

/// Nice value of the aggregator's thread: below the lookups, so they get
/// a core first, but well above the other stages, because lookups wait for
/// its write lock and it must keep up with the log.
const AGGREGATOR_NICE: i32 = 5;

/// Lowers the calling thread to [`AGGREGATOR_NICE`] (the aggregator's
/// thread, once the lookup API runs).
pub fn for_the_aggregator() {
    lower_priority(AGGREGATOR_NICE);
}

/// Lowers the calling thread's CPU priority to [`BACKGROUND_NICE`], and
/// with it that of every thread it starts from now on (Linux threads
/// inherit it). `replay` opens the log on such a thread (so the log's
/// store workers inherit it) and calls it once the lookup API and the
/// aggregator run: publishing, ingest, their stores, the nightly batch and
/// the aggregator's decoding thread then yield the cores to lookups, and
/// the aggregator's own thread runs at [`AGGREGATOR_NICE`]. Under `wrk`
/// during a replay, p99 went from 52 ms to about 12-16 ms with the nice
/// value, and to 11-12 ms (a third more lookups served) with `SCHED_IDLE`
/// as well.
pub fn yield_to_lookups() {
    lower_priority(BACKGROUND_NICE);
    idle_policy();
}

/// Puts the calling thread (and the threads it starts) under Linux's
/// `SCHED_IDLE` policy: it runs when no normal thread wants the core, and a
/// normal thread that wakes (a lookup) takes the core at once instead of
/// waiting for the end of a time slice. Needs no privileges. A no-op
/// elsewhere, and a debug line if refused.
fn idle_policy() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param that outlives the call;
        // pid 0 is the calling thread.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "Could not put a thread under SCHED_IDLE."
            );
        }
    }
}

/// Sets the calling thread's nice value (Linux: per thread, inherited by
/// the threads it starts). A no-op elsewhere, and a debug line if refused
/// (raising a priority needs privileges; lowering it never does).
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority takes plain integers and touches no memory.
        // On Linux, PRIO_PROCESS with who = 0 is the calling thread only.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
        if rc != 0 {
            tracing::debug!(
                nice,
                error = %std::io::Error::last_os_error(),
                "Could not lower a thread's priority."
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// Runs `f` on a thread at background priority ([`yield_to_lookups`]) and
/// returns what it returns: threads `f` starts (a store's workers) run at
/// that priority for good, while the caller keeps its own.
pub fn in_background<T: Send>(f: impl FnOnce() -> T + Send) -> anyhow::Result<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("background-open".into())
            .spawn_scoped(s, || {
                yield_to_lookups();
                f()
            })
            .context("starting a thread")?
            .join()
            .map_err(|_| anyhow::anyhow!("a background thread panicked"))
    })
}
