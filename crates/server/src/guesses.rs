//! Code guessing on a media server: rooms are found by a short code, so every place that
//! tests a code (`GET /api/rooms/{code}`, `join` on `/ws`, `POST /whip/{code}`) spends one
//! per-client budget of misses, the coordinator's [`GuessThrottle`]: [`MAX_MISSES`] wrong codes
//! within [`MISS_WINDOW_MS`] lock the client out for [`LOCKOUT_MS`], and from the third miss in
//! the window on, each wrong answer is held back longer ([`miss_delay`]: the `code_miss_delay_ms`
//! setting, doubling, at most [`MAX_MISS_DELAY_MS`]). Clients count per IPv4 address and per
//! IPv6 /64. Right codes are never slowed down: only misses count. `GET /r/{code}` gives the
//! same page for every code, so it tells nothing and is not counted.
//!
//! In `orbita serve` the budget is the coordinator's own ([`CodeGuesses::share`]), so its code
//! verbs (`CONNECT_SESSION_WITH_CODE`, ...) and the media server's lookups add up.
//!
//! The check, the lookup and the recording of the miss happen under one lock
//! ([`CodeGuesses::attempt`]): parallel guesses cannot all pass the check before the first
//! miss is recorded.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orbita_coordinator::logic::{ceil_secs, miss_delay, GuessThrottle, ThrottleSettings};
use parking_lot::{Mutex, RwLock};

/// Wrong codes from one client within [`MISS_WINDOW_MS`] that lock it out.
pub const MAX_MISSES: u32 = 10;
/// The window in which misses are counted.
pub const MISS_WINDOW_MS: i64 = 10 * 60 * 1000;
/// How long a lock-out lasts.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;
/// The longest a wrong answer is held back (the delays double from `code_miss_delay_ms`).
pub const MAX_MISS_DELAY_MS: i64 = 4000;

/// A code lookup refused because the client is locked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedOut {
    /// Seconds until the lock-out ends.
    pub retry_after_secs: u64,
}

/// Totals since start, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuessCounts {
    /// Wrong codes (each counted towards its client's budget).
    pub misses: u64,
    /// Clients locked out.
    pub lockouts: u64,
    /// Lookups refused because their client was locked out.
    pub refused: u64,
}

/// The per-client budget of code misses of one media server (or of `orbita serve` as a whole).
pub struct CodeGuesses {
    throttle: RwLock<Arc<Mutex<GuessThrottle>>>,
    /// The first delayed miss's delay, in ms (0: no delays).
    delay_base_ms: i64,
    misses: AtomicU64,
    lockouts: AtomicU64,
    refused: AtomicU64,
}

impl Default for CodeGuesses {
    fn default() -> Self {
        CodeGuesses::new(crate::Settings::default().code_miss_delay_ms)
    }
}

impl CodeGuesses {
    /// A budget of its own with the default limits, delays starting at `delay_base_ms`.
    pub fn new(delay_base_ms: u64) -> Self {
        CodeGuesses {
            throttle: RwLock::new(Arc::new(Mutex::new(GuessThrottle::new(ThrottleSettings {
                // The attempt rate is not used here (`check_lockout`; signalling has its own).
                per_second: 1e9,
                burst: u32::MAX,
                max_misses: MAX_MISSES,
                window: MISS_WINDOW_MS,
                lockout: LOCKOUT_MS,
            })))),
            delay_base_ms: i64::try_from(delay_base_ms).unwrap_or(i64::MAX),
            misses: AtomicU64::new(0),
            lockouts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Wrong codes, lock-outs and refused lookups so far (this server's lookups only).
    pub fn counts(&self) -> GuessCounts {
        GuessCounts {
            misses: self.misses.load(Ordering::Relaxed),
            lockouts: self.lockouts.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
        }
    }

    /// From now on count in `throttle` (the coordinator's, in `orbita serve`), whose limits
    /// then apply; misses counted so far here are forgotten.
    pub fn share(&self, throttle: Arc<Mutex<GuessThrottle>>) {
        *self.throttle.write() = throttle;
    }

    fn now() -> i64 {
        orbita_coordinator::now_ms()
    }

    /// Test a code for `client`: refused while it is locked out; else `lookup` runs, and when
    /// `is_miss` says it found nothing, the miss is counted. Returns the lookup's result and
    /// how long to hold the answer back (zero for a hit).
    pub fn attempt<T>(
        &self,
        client: IpAddr,
        lookup: impl FnOnce() -> T,
        is_miss: impl FnOnce(&T) -> bool,
    ) -> Result<(T, Duration), LockedOut> {
        let throttle: Arc<Mutex<GuessThrottle>> = self.throttle.read().clone();
        let mut throttle = throttle.lock();
        let now = Self::now();
        if let Err(ms) = throttle.check_lockout(client, now) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(LockedOut {
                retry_after_secs: ceil_secs(ms),
            });
        }
        let found = lookup();
        if !is_miss(&found) {
            return Ok((found, Duration::ZERO));
        }
        let miss = throttle.miss(client, now);
        self.misses.fetch_add(1, Ordering::Relaxed);
        if let Some(ms) = miss.locked_for {
            self.lockouts.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%client, secs = ceil_secs(ms), "code guessing: client locked out");
        }
        let delay = miss_delay(miss.in_window, self.delay_base_ms, MAX_MISS_DELAY_MS);
        Ok((found, Duration::from_millis(delay.max(0) as u64)))
    }
}

/// The message for a locked-out client.
pub fn locked_out_message(secs: u64) -> String {
    format!("too many wrong codes from your address: try again in {secs} s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_lock_out_and_hits_never_count() {
        let g = CodeGuesses::new(0);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..100 {
            let (hit, delay) = g.attempt(a, || true, |hit| !hit).unwrap();
            assert!(hit && delay.is_zero(), "hits alone never lock out");
        }
        for _ in 0..MAX_MISSES {
            g.attempt(a, || false, |hit| !hit).unwrap();
        }
        let locked = g.attempt(a, || true, |hit| !hit).unwrap_err();
        let secs = locked.retry_after_secs;
        assert!(secs > 0 && secs <= (LOCKOUT_MS / 1000) as u64, "{secs}");
        assert!(g.attempt(b, || true, |_| false).is_ok(), "another address");
        assert_eq!(
            g.counts(),
            GuessCounts {
                misses: u64::from(MAX_MISSES),
                lockouts: 1,
                refused: 1
            }
        );
    }

    #[test]
    fn wrong_answers_are_held_back_and_a_shared_budget_adds_up() {
        let g = CodeGuesses::new(250);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let delays: Vec<u128> = (0..5)
            .map(|_| g.attempt(a, || (), |_| true).unwrap().1.as_millis())
            .collect();
        assert_eq!(delays, [0, 0, 250, 500, 1000]);
        let (_, hit_delay) = g.attempt(a, || (), |_| false).unwrap();
        assert!(hit_delay.is_zero(), "right codes are never slowed");

        // Shared with a coordinator's throttle: its misses and ours are one budget.
        let shared = Arc::new(Mutex::new(GuessThrottle::new(ThrottleSettings {
            per_second: 1.0,
            burst: 5,
            max_misses: 3,
            window: MISS_WINDOW_MS,
            lockout: LOCKOUT_MS,
        })));
        g.share(Arc::clone(&shared));
        shared.lock().record_miss(a, CodeGuesses::now());
        shared.lock().record_miss(a, CodeGuesses::now());
        let (_, delay) = g.attempt(a, || (), |_| true).unwrap();
        assert_eq!(
            delay.as_millis(),
            250,
            "the third miss of the shared budget"
        );
        assert!(g.attempt(a, || (), |_| false).is_err(), "locked out");
        assert!(shared.lock().check_lockout(a, CodeGuesses::now()).is_err());
    }
}
