//! The coordinator's pure decisions: paging ranges, placement, slot capacity, codes and code
//! guessing throttles. No I/O and no clock: every function takes `now`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use rand::Rng;

use crate::clock::{Millis, SECOND};

/// Parses `"X-Y"` (zero-based, inclusive) into `(offset, count)`; `count = Y - X + 1`, at most
/// `max_count`: a longer range answers its first `max_count` entries (the spec's own example,
/// `"20-213"`, is longer than the default limit), and the client pages on from there.
pub fn parse_range(range: &str, max_count: usize) -> Result<(usize, usize), RangeError> {
    let (x, y) = range.trim().split_once('-').ok_or(RangeError::Malformed)?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(x) || !digits(y) {
        return Err(RangeError::Malformed);
    }
    let (x, y): (usize, usize) = (
        x.parse().map_err(|_| RangeError::Malformed)?,
        y.parse().map_err(|_| RangeError::Malformed)?,
    );
    if y < x {
        return Err(RangeError::Malformed);
    }
    Ok((x, (y - x + 1).min(max_count)))
}

/// Why a range was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeError {
    /// Not `X-Y` with X <= Y.
    Malformed,
}

/// The most intervals `[start, end)` that overlap at any single moment of `[from, to)`.
pub fn max_concurrent(intervals: &[(Millis, Millis)], from: Millis, to: Millis) -> usize {
    let mut events: Vec<(Millis, i32)> = Vec::new();
    for &(s, e) in intervals {
        let (s, e) = (s.max(from), e.min(to));
        if s < e {
            events.push((s, 1));
            events.push((e, -1));
        }
    }
    // Ends sort before starts at the same instant: [a, b) and [b, c) do not overlap.
    events.sort_by_key(|&(t, d)| (t, d));
    let (mut cur, mut best) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        best = best.max(cur);
    }
    best as usize
}

/// Whether one more interval `[from, to)` fits under `capacity` given those already booked.
pub fn slot_fits(booked: &[(Millis, Millis)], from: Millis, to: Millis, capacity: u64) -> bool {
    slot_fits_over(0, booked, from, to, capacity)
}

/// [`slot_fits`] with `running` more intervals that cover all of `[from, to)`.
pub fn slot_fits_over(
    running: u64,
    booked: &[(Millis, Millis)],
    from: Millis,
    to: Millis,
    capacity: u64,
) -> bool {
    running.saturating_add(max_concurrent(booked, from, to) as u64) < capacity
}

/// Where `now` stands against the extension window of a slot ending at `end`: the window is
/// `[end - window, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtensionWindow {
    /// Not yet: it opens at this instant.
    OpensAt(Millis),
    /// Open: the slot may be extended now.
    Open,
    /// The slot is over.
    Over,
}

/// Whether a slot ending at `end` may be extended at `now` (see [`ExtensionWindow`]).
pub fn extension_window(end: Millis, window: Millis, now: Millis) -> ExtensionWindow {
    if now >= end {
        ExtensionWindow::Over
    } else if now < end - window {
        ExtensionWindow::OpensAt(end - window)
    } else {
        ExtensionWindow::Open
    }
}

/// A random code of `len` digits (leading zeros allowed).
pub fn random_code(len: usize, rng: &mut impl Rng) -> String {
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// `bytes` random bytes as hex digits (tokens, secrets, ids), from the thread's CSPRNG.
pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}

/// Whether `code` has the configured shape: digits, from `min_len` (the `code_length`
/// setting) to [`MAX_CODE_LENGTH`] of them (codes grow longer as more are live).
pub fn is_valid_code(code: &str, min_len: usize) -> bool {
    (min_len..=MAX_CODE_LENGTH.max(min_len)).contains(&code.len())
        && code.bytes().all(|b| b.is_ascii_digit())
}

/// A generated code's length keeps at least this many codes of that length per live code
/// (so at most 1% of the codes of any length are live, and a guess finds one at most once in
/// a hundred tries).
pub const CODES_PER_LIVE_ROOM: u64 = 100;

/// The longest generated code, in digits.
pub const MAX_CODE_LENGTH: usize = 12;

/// Digits of the next generated code while `live` codes are in use: the shortest length, from
/// `min` (the `code_length` setting) on, whose code space has [`CODES_PER_LIVE_ROOM`] codes
/// for every live code, the new one included; at most [`MAX_CODE_LENGTH`].
pub fn code_length_for(live: usize, min: usize) -> usize {
    let needed = (live as u64)
        .saturating_add(1)
        .saturating_mul(CODES_PER_LIVE_ROOM);
    (min..MAX_CODE_LENGTH)
        .find(|&len| code_space(len) >= needed)
        .unwrap_or(MAX_CODE_LENGTH.max(min))
}

/// The number of codes of `len` digits (10^len, saturating).
pub fn code_space(len: usize) -> u64 {
    10u64.saturating_pow(len.min(19) as u32)
}

/// A token bucket: `per_second` on average, in bursts of up to `burst` (virtual time: the
/// caller passes `now`).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_ms: f64,
    burst: f64,
    tokens: f64,
    last: Millis,
}

impl TokenBucket {
    /// Full bucket.
    pub fn new(per_second: f64, burst: f64, now: Millis) -> Self {
        TokenBucket {
            rate_per_ms: per_second / 1000.0,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes a token; `Err(ms until one is there)` when empty.
    pub fn take(&mut self, now: Millis) -> Result<(), Millis> {
        self.take_n(1.0, now)
    }

    /// Takes `n` tokens at once (say, bytes); `Err(ms until they are there)` when there are
    /// fewer (then none are taken; more than the burst never fits: `Err(Millis::MAX)`).
    pub fn take_n(&mut self, n: f64, now: Millis) -> Result<(), Millis> {
        let dt = (now - self.last).max(0) as f64;
        self.tokens = (self.tokens + dt * self.rate_per_ms).min(self.burst);
        self.last = now.max(self.last);
        if n > self.burst {
            return Err(Millis::MAX);
        }
        if self.tokens >= n {
            self.tokens -= n;
            Ok(())
        } else {
            Err(((n - self.tokens) / self.rate_per_ms).ceil() as Millis)
        }
    }

    fn idle_full(&self, now: Millis) -> bool {
        self.tokens + (now - self.last).max(0) as f64 * self.rate_per_ms >= self.burst
    }
}

/// Settings of a [`GuessThrottle`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleSettings {
    /// Attempts per second per address.
    pub per_second: f64,
    /// Burst of attempts.
    pub burst: u32,
    /// Misses within `window` that lock the address out.
    pub max_misses: u32,
    /// The miss window.
    pub window: Millis,
    /// How long a lock-out lasts.
    pub lockout: Millis,
}

/// Why an attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Too fast: retry after this many ms.
    RateLimited(Millis),
    /// Too many misses: locked for this many more ms.
    LockedOut(Millis),
}

#[derive(Debug, Clone)]
struct AddrState {
    bucket: TokenBucket,
    misses: VecDeque<Millis>,
    locked_until: Millis,
}

/// Throttles code guessing per client address: a token-bucket rate limit on attempts, and a
/// lock-out after `max_misses` wrong codes within `window`. IPv6 addresses count per /64.
/// Kept in memory: with several coordinators each enforces it for the clients it serves.
#[derive(Debug)]
pub struct GuessThrottle {
    settings: ThrottleSettings,
    addrs: HashMap<IpAddr, AddrState>,
}

/// Most addresses tracked at once; beyond it the idle ones are dropped first.
const MAX_TRACKED: usize = 100_000;

fn key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut seg = v6.segments();
            seg[4..].iter_mut().for_each(|s| *s = 0);
            IpAddr::V6(seg.into())
        }
    }
}

impl GuessThrottle {
    /// An empty throttle.
    pub fn new(settings: ThrottleSettings) -> Self {
        GuessThrottle {
            settings,
            addrs: HashMap::new(),
        }
    }

    /// Call before looking a code up: refuses when locked out or too fast.
    pub fn check(&mut self, addr: IpAddr, now: Millis) -> Result<(), Throttled> {
        if self.addrs.len() >= MAX_TRACKED {
            self.prune(now);
        }
        let s = self.settings;
        let st = self.addrs.entry(key(addr)).or_insert_with(|| AddrState {
            bucket: TokenBucket::new(s.per_second, s.burst as f64, now),
            misses: VecDeque::new(),
            locked_until: 0,
        });
        if now < st.locked_until {
            return Err(Throttled::LockedOut(st.locked_until - now));
        }
        st.bucket.take(now).map_err(Throttled::RateLimited)
    }

    /// Call when the code matched nothing. Returns the lock-out length when this miss locked the address.
    pub fn record_miss(&mut self, addr: IpAddr, now: Millis) -> Option<Millis> {
        self.miss(addr, now).locked_for
    }

    /// Only the lock-out, not the attempt rate: `Err(ms)` while `addr` is locked out. For
    /// lookups that have a rate limit of their own (a media server's signalling), so that they
    /// share the miss budget without sharing the coordinator's attempt rate.
    pub fn check_lockout(&mut self, addr: IpAddr, now: Millis) -> Result<(), Millis> {
        match self.addrs.get(&key(addr)) {
            Some(st) if now < st.locked_until => Err(st.locked_until - now),
            _ => Ok(()),
        }
    }

    /// Call when the code matched nothing: the miss counts towards the lock-out, and says how
    /// many misses the address has in the window now (for [`miss_delay`]) and whether it is
    /// locked out by this one.
    pub fn miss(&mut self, addr: IpAddr, now: Millis) -> Miss {
        if self.addrs.len() >= MAX_TRACKED {
            self.prune(now);
        }
        let s = self.settings;
        let st = self.addrs.entry(key(addr)).or_insert_with(|| AddrState {
            bucket: TokenBucket::new(s.per_second, s.burst as f64, now),
            misses: VecDeque::new(),
            locked_until: 0,
        });
        while st.misses.front().is_some_and(|&t| t <= now - s.window) {
            st.misses.pop_front();
        }
        st.misses.push_back(now);
        let in_window = u32::try_from(st.misses.len()).unwrap_or(u32::MAX);
        if in_window >= s.max_misses {
            st.misses.clear();
            st.locked_until = now + s.lockout;
            return Miss {
                in_window,
                locked_for: Some(s.lockout),
            };
        }
        Miss {
            in_window,
            locked_for: None,
        }
    }

    /// Forgets addresses with nothing left to remember.
    pub fn prune(&mut self, now: Millis) {
        let s = self.settings;
        self.addrs.retain(|_, st| {
            now < st.locked_until
                || st.misses.back().is_some_and(|&t| t > now - s.window)
                || !st.bucket.idle_full(now)
        });
    }

    /// Addresses tracked now.
    pub fn tracked(&self) -> usize {
        self.addrs.len()
    }
}

/// A recorded miss (see [`GuessThrottle::miss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miss {
    /// Misses of the address within the window, this one included.
    pub in_window: u32,
    /// Set when this miss locked the address out: for how long.
    pub locked_for: Option<Millis>,
}

/// Misses within the window answered at once; from the next one on, answers are delayed
/// ([`miss_delay`]).
pub const FREE_MISSES: u32 = 2;

/// How long to hold the answer to an address's `in_window`-th miss (1-based): nothing for
/// the first [`FREE_MISSES`], then `base`, doubling with each further miss, at most `max`.
/// Right codes are never delayed: only misses are.
pub fn miss_delay(in_window: u32, base: Millis, max: Millis) -> Millis {
    if in_window <= FREE_MISSES || base <= 0 {
        return 0;
    }
    let doublings = (in_window - FREE_MISSES - 1).min(32);
    base.saturating_mul(1 << doublings).min(max.max(0))
}

/// Rounds ms up to whole seconds (for `retry_after_seconds`).
pub fn ceil_secs(ms: Millis) -> u64 {
    ((ms.max(0) + SECOND - 1) / SECOND) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::MINUTE;

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let mut bucket = TokenBucket::new(50.0, 100.0, 0);
        assert_eq!((0..150).filter(|_| bucket.take(0).is_ok()).count(), 100);
        // The next token comes in 20 ms; a tenth of a second refills five.
        assert_eq!(bucket.take(0), Err(20));
        assert_eq!((0..10).filter(|_| bucket.take(100).is_ok()).count(), 5);
        // A long pause refills only up to the burst; time going back refills nothing.
        assert_eq!(
            (0..150).filter(|_| bucket.take(60_100).is_ok()).count(),
            100
        );
        assert!(bucket.take(50_000).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("0-20", 100), Ok((0, 21)));
        assert_eq!(parse_range("20-213", 200), Ok((20, 194)));
        assert_eq!(parse_range("5-5", 1), Ok((5, 1)));
        // Longer than the limit: the first entries of the range, up to the limit.
        assert_eq!(parse_range("20-213", 100), Ok((20, 100)));
        assert_eq!(parse_range("0-999999999", 100), Ok((0, 100)));
        for bad in [
            "",
            "5",
            "5-",
            "-5",
            "5-4",
            "a-b",
            "1-2-3",
            " - ",
            "+1-2",
            "1 - 2",
            "99999999999-99999999999",
        ] {
            assert_eq!(parse_range(bad, 100), Err(RangeError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn capacity_over_a_slot() {
        let h = 60 * MINUTE;
        let booked = [(0, h), (h / 2, 2 * h), (2 * h, 3 * h)];
        assert_eq!(max_concurrent(&booked, 0, 3 * h), 2);
        assert_eq!(max_concurrent(&booked, 2 * h, 3 * h), 1);
        assert_eq!(max_concurrent(&booked, 3 * h, 4 * h), 0);
        // Touching intervals do not overlap.
        assert_eq!(max_concurrent(&[(0, h), (h, 2 * h)], 0, 2 * h), 1);
        assert!(slot_fits(&booked, 2 * h, 3 * h, 2));
        assert!(!slot_fits(&booked, 0, h, 2));
        assert!(slot_fits(&booked, 0, h, 3));
        assert!(!slot_fits(&[], 0, h, 0));
        assert!(slot_fits_over(1, &booked, 2 * h, 3 * h, 3));
        assert!(!slot_fits_over(1, &booked, 2 * h, 3 * h, 2));
        assert!(!slot_fits_over(1, &booked, 0, h, 3));
        assert!(slot_fits_over(1, &booked, 0, h, 4));
    }

    #[test]
    fn extension_window_before_the_end() {
        let (end, w) = (120 * MINUTE, 10 * MINUTE);
        assert_eq!(
            extension_window(end, w, 0),
            ExtensionWindow::OpensAt(110 * MINUTE)
        );
        assert_eq!(
            extension_window(end, w, 110 * MINUTE - 1),
            ExtensionWindow::OpensAt(110 * MINUTE)
        );
        assert_eq!(
            extension_window(end, w, 110 * MINUTE),
            ExtensionWindow::Open
        );
        assert_eq!(extension_window(end, w, end - 1), ExtensionWindow::Open);
        assert_eq!(extension_window(end, w, end), ExtensionWindow::Over);
        // A window longer than the slot is open from the start.
        assert_eq!(extension_window(end, 3 * end, 0), ExtensionWindow::Open);
    }

    #[test]
    fn codes() {
        let mut rng = rand::rng();
        for len in [4, 6, 12] {
            let c = random_code(len, &mut rng);
            assert!(is_valid_code(&c, len), "{c}");
        }
        assert!(!is_valid_code("12a4", 4));
        assert!(
            is_valid_code("12345", 4),
            "codes grow longer as more are live"
        );
        assert!(!is_valid_code("123", 4));
        assert!(!is_valid_code("1234567890123", 4), "at most 12 digits");
        assert!(!is_valid_code("12345", 6), "never shorter than code_length");
        assert_eq!(code_space(4), 10_000);
        assert_eq!(ceil_secs(1), 1);
        assert_eq!(ceil_secs(1000), 1);
        assert_eq!(ceil_secs(1001), 2);
    }

    fn throttle() -> GuessThrottle {
        GuessThrottle::new(ThrottleSettings {
            per_second: 1.0,
            burst: 3,
            max_misses: 4,
            window: 10 * MINUTE,
            lockout: 15 * MINUTE,
        })
    }

    #[test]
    fn rate_limit_per_address() {
        let mut t = throttle();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            t.check(a, 0).unwrap();
        }
        assert_eq!(t.check(a, 0), Err(Throttled::RateLimited(1000)));
        t.check(b, 0).unwrap(); // another address is not affected
        assert_eq!(t.check(a, 400), Err(Throttled::RateLimited(600)));
        t.check(a, 1000).unwrap();
        // IPv6 counts per /64.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        for _ in 0..3 {
            t.check(v6a, 0).unwrap();
        }
        assert!(matches!(t.check(v6b, 0), Err(Throttled::RateLimited(_))));
    }

    #[test]
    fn lockout_after_misses_in_window() {
        let mut t = throttle();
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let mut now = 0;
        // Three misses, then the window passes: they are forgotten.
        for _ in 0..3 {
            t.check(a, now).unwrap();
            assert_eq!(t.record_miss(a, now), None);
            now += 2 * SECOND;
        }
        now += 10 * MINUTE;
        for i in 0..4 {
            t.check(a, now).unwrap();
            let locked = t.record_miss(a, now);
            assert_eq!(locked.is_some(), i == 3);
            now += 2 * SECOND;
        }
        // Locked: even a correct code is refused until the lock-out ends.
        let until = now - 2 * SECOND + 15 * MINUTE;
        assert_eq!(t.check(a, now), Err(Throttled::LockedOut(until - now)));
        assert!(t.check(a, until - 1).is_err());
        t.check(a, until).unwrap();
        // Pruning forgets it once nothing is left to remember.
        t.prune(until + 11 * MINUTE);
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn misses_are_delayed_more_and_more_up_to_the_cap() {
        let delays: Vec<Millis> = (1..=9).map(|n| miss_delay(n, 250, 4000)).collect();
        assert_eq!(delays, [0, 0, 250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(miss_delay(u32::MAX, 250, 4000), 4000);
        assert_eq!(miss_delay(5, 0, 4000), 0, "a base of 0 turns delays off");
    }

    #[test]
    fn lockout_only_check_shares_the_misses_without_the_rate() {
        let mut t = throttle();
        let a: IpAddr = "2001:db8:1:2::5".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let now = 10 * SECOND;
        // Far beyond the attempt rate: check_lockout never takes a token.
        for _ in 0..100 {
            t.check_lockout(a, now).unwrap();
        }
        // Misses from anywhere in the /64 add up, and tell how many there are.
        assert_eq!(
            t.miss(a, now),
            Miss {
                in_window: 1,
                locked_for: None
            }
        );
        assert_eq!(t.miss(same_64, now + 1).in_window, 2);
        assert_eq!(t.miss(a, now + 2).in_window, 3);
        assert_eq!(
            t.miss(same_64, now + 3),
            Miss {
                in_window: 4,
                locked_for: Some(15 * MINUTE)
            }
        );
        assert_eq!(t.check_lockout(a, now + 3), Err(15 * MINUTE));
        // The rate-limited check (the coordinator's) sees the same lock-out.
        assert_eq!(
            t.check(same_64, now + 4),
            Err(Throttled::LockedOut(15 * MINUTE - 1))
        );
        let other: IpAddr = "2001:db8:1:3::5".parse().unwrap();
        t.check_lockout(other, now).unwrap();
        t.check_lockout(a, now + 3 + 15 * MINUTE).unwrap();
    }
}
