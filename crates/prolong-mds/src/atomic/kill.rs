//! Kill points counted by progress: each write step may end the process, so
//! kill tests stop a writer at a chosen step on any machine under any load.

/// The environment variable that kills a process at its N-th write step
/// (see the module docs).
pub const KILL_AT_WRITE_VAR: &str = "PROLONG_KILL_AT_WRITE";

/// One write step: the process dies here if it is the step
/// `PROLONG_KILL_AT_WRITE` names. Every write of this module calls it (see
/// the module docs); writers that do not go through them (the trainer's
/// appended metrics lines) call it once per record, so that kill tests can
/// stop them by progress too.
pub fn write_step() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static KILL_AT: OnceLock<Option<u64>> = OnceLock::new();
    static STEPS: AtomicU64 = AtomicU64::new(0);
    let kill_at = *KILL_AT.get_or_init(|| {
        std::env::var(KILL_AT_WRITE_VAR)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    if let Some(at) = kill_at
        && STEPS.fetch_add(1, Ordering::SeqCst) + 1 == at
    {
        kill_self();
    }
}

/// Dies as `kill -9` kills: no destructor runs, no buffer is flushed.
fn kill_self() -> ! {
    #[cfg(unix)]
    // SAFETY: kill(2) on our own pid touches no memory of this process.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL is delivered before kill(2) returns; elsewhere, abort.
    std::process::abort()
}
