//! Giving freed memory back to the system. glibc's allocator keeps what a burst of calls
//! freed (1,000 participants leaving left ~140 MB resident for good, measured by
//! tests/it/churn.rs); a periodic `malloc_trim` returns the free pages at the top of each
//! arena and the unused pages inside them, so an idle server shrinks back towards its
//! starting size. Other allocators (musl) have no such call and need none.

use std::time::Duration;

/// How often free memory is handed back.
pub const TRIM_INTERVAL: Duration = Duration::from_secs(10);

/// Every [`TRIM_INTERVAL`], on a blocking thread, `malloc_trim(0)` (glibc only).
pub fn spawn_trimmer() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TRIM_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    })
}

/// Hands free memory back to the system now.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
