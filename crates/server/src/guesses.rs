//! Code guessing on a media server: rooms are found by a short code, so the places that look a
//! code up (`GET /api/rooms/{code}`, `join` on `/ws`) lock an address out after repeated
//! misses, as the coordinator does for `CONNECT_SESSION_WITH_CODE` (the same
//! [`GuessThrottle`]). Right codes are never slowed down: only misses count.

use std::net::IpAddr;
use std::time::Instant;

use orbita_coordinator::logic::{ceil_secs, GuessThrottle, ThrottleSettings, Throttled};
use parking_lot::Mutex;

/// Wrong codes from one address within [`MISS_WINDOW_MS`] that lock it out.
pub const MAX_MISSES: u32 = 10;
/// The window in which misses are counted.
pub const MISS_WINDOW_MS: i64 = 10 * 60 * 1000;
/// How long a lock-out lasts.
pub const LOCKOUT_MS: i64 = 15 * 60 * 1000;

/// Per-address lock-out after repeated wrong codes.
pub struct CodeGuesses {
    throttle: Mutex<GuessThrottle>,
    epoch: Instant,
}

impl Default for CodeGuesses {
    fn default() -> Self {
        CodeGuesses {
            throttle: Mutex::new(GuessThrottle::new(ThrottleSettings {
                // No rate limit on attempts (the signalling rate limit applies); misses only.
                per_second: 1e9,
                burst: u32::MAX,
                max_misses: MAX_MISSES,
                window: MISS_WINDOW_MS,
                lockout: LOCKOUT_MS,
            })),
            epoch: Instant::now(),
        }
    }
}

impl CodeGuesses {
    fn now(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Before a lookup: `Err(seconds)` while `addr` is locked out.
    pub fn check(&self, addr: IpAddr) -> Result<(), u64> {
        match self.throttle.lock().check(addr, self.now()) {
            Ok(()) => Ok(()),
            Err(Throttled::LockedOut(ms) | Throttled::RateLimited(ms)) => Err(ceil_secs(ms)),
        }
    }

    /// After a lookup that found nothing.
    pub fn miss(&self, addr: IpAddr) {
        let now = self.now();
        if let Some(ms) = self.throttle.lock().record_miss(addr, now) {
            tracing::warn!(%addr, secs = ceil_secs(ms), "code guessing: address locked out");
        }
    }
}

/// The message for a locked-out address.
pub fn locked_out_message(secs: u64) -> String {
    format!("too many wrong codes from your address: try again in {secs} s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_lock_out_and_hits_never_count() {
        let g = CodeGuesses::default();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..100 {
            assert!(g.check(a).is_ok(), "hits alone never lock out");
        }
        for _ in 0..MAX_MISSES {
            assert!(g.check(a).is_ok());
            g.miss(a);
        }
        let secs = g.check(a).unwrap_err();
        assert!(secs > 0 && secs <= (LOCKOUT_MS / 1000) as u64, "{secs}");
        assert!(g.check(b).is_ok(), "another address is not affected");
    }
}
