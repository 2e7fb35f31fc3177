//! The login limits as numbers (from the settings): lock-outs per account and address, per
//! address, and the account's growing delay ([`LoginLimits::delay_ms`]). The database applies
//! them (`Accounts::reserve_attempt`, docs/security.md "Accounts").

use crate::clock::Millis;

/// The login limits `Accounts::reserve_attempt` applies (from the settings).
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// The window failures are counted in.
    pub window_ms: Millis,
    /// How long a lock-out lasts.
    pub lockout_ms: Millis,
    /// Failures of one account from one address that lock that address out of it; also the
    /// account's failures (from anywhere) after which attempts are delayed.
    pub max_failures: u32,
    /// Failures from one address (any account) that lock it out of every account.
    pub max_failures_per_address: u32,
    /// The longest delay between attempts on one account.
    pub max_delay_ms: Millis,
}

/// The first delay between attempts on an account past its failure limit; it doubles with
/// each further failure up to `login_delay_max_secs`.
pub const LOGIN_DELAY_BASE_MS: Millis = 1000;

impl LoginLimits {
    /// How long after its last failure an account with `failures` (in the window) takes the
    /// next attempt: none below `max_failures`, then 1 s, 2 s, 4 s ... at most `max_delay_ms`.
    pub fn delay_ms(&self, failures: i64) -> Option<Millis> {
        let over = failures - i64::from(self.max_failures);
        (over >= 0).then(|| {
            let doubled = LOGIN_DELAY_BASE_MS.saturating_mul(1 << over.min(40));
            doubled.min(self.max_delay_ms)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_starts_at_the_limit_doubles_and_stops_at_its_cap() {
        let limits = LoginLimits {
            window_ms: 900_000,
            lockout_ms: 900_000,
            max_failures: 10,
            max_failures_per_address: 50,
            max_delay_ms: 60_000,
        };
        let delays: Vec<Option<Millis>> = (8..18).map(|n| limits.delay_ms(n)).collect();
        assert_eq!(
            delays,
            [
                None,
                None,
                Some(1_000),
                Some(2_000),
                Some(4_000),
                Some(8_000),
                Some(16_000),
                Some(32_000),
                Some(60_000),
                Some(60_000)
            ]
        );
        assert_eq!(limits.delay_ms(i64::MAX), Some(60_000));
    }
}
