//! RTP timestamps to milliseconds on the recording's clock, sans-IO.
//!
//! A track's clock is anchored at its first packet: that packet's arrival (relative to the
//! recording's start) is its time, and later packets are placed by their RTP timestamps
//! (unwrapped) from there, so network jitter does not reach the file. When the RTP-derived
//! time and the arrival time part by more than [`MAX_DRIFT_MS`] (a pause whose timestamps did
//! not jump with it, a new SSRC with a new random timestamp base after a restart, a sender
//! clock far off), the clock is re-anchored to the arrival. Times never go backwards: a packet
//! placed before the previous one gets the previous one's time.

use std::time::Instant;

/// The RTP-derived time may be this far (ms) from the arrival time before re-anchoring.
pub const MAX_DRIFT_MS: i64 = 1_000;

/// One track's mapping.
#[derive(Debug)]
pub struct Timeline {
    clock_rate: i64,
    origin: Instant,
    /// `(unwrapped RTP timestamp, ms)` of the anchor.
    anchor: Option<(i64, i64)>,
    /// The last RTP timestamp seen, and its unwrapped value.
    last_rtp: Option<(u32, i64)>,
    /// The last time handed out.
    last_ms: u64,
    reanchored: u64,
}

impl Timeline {
    /// A timeline for RTP timestamps at `clock_rate` Hz (48,000 for Opus, 90,000 for video), on
    /// a clock whose zero is `origin` (the recording's start).
    pub fn new(clock_rate: u32, origin: Instant) -> Timeline {
        Timeline {
            clock_rate: i64::from(clock_rate),
            origin,
            anchor: None,
            last_rtp: None,
            last_ms: 0,
            reanchored: 0,
        }
    }

    /// The time (ms after the origin) of a packet with RTP timestamp `rtp_ts` that arrived at
    /// `arrival`. Call in sequence-number order.
    pub fn map(&mut self, rtp_ts: u32, arrival: Instant) -> u64 {
        let arrival_ms = arrival.saturating_duration_since(self.origin).as_millis() as i64;
        let unwrapped = match self.last_rtp {
            None => i64::from(rtp_ts),
            Some((last, last_unwrapped)) => {
                last_unwrapped + i64::from(rtp_ts.wrapping_sub(last) as i32)
            }
        };
        self.last_rtp = Some((rtp_ts, unwrapped));

        let (anchor_ts, anchor_ms) = *self.anchor.get_or_insert((unwrapped, arrival_ms));
        let mut ms = anchor_ms + (unwrapped - anchor_ts) * 1_000 / self.clock_rate;
        if (ms - arrival_ms).abs() > MAX_DRIFT_MS {
            self.anchor = Some((unwrapped, arrival_ms));
            self.reanchored += 1;
            ms = arrival_ms;
        }
        self.last_ms = self.last_ms.max(ms.max(0) as u64);
        self.last_ms
    }

    /// How many times the clock was re-anchored.
    pub fn reanchored(&self) -> u64 {
        self.reanchored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn anchored_at_the_first_arrival_then_by_rtp_time() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(48_000, t0);
        assert_eq!(tl.map(1_000_000, at(t0, 500)), 500);
        // Jittered arrivals, steady timestamps: 20 ms steps.
        assert_eq!(tl.map(1_000_960, at(t0, 540)), 520);
        assert_eq!(tl.map(1_001_920, at(t0, 541)), 540);
        assert_eq!(tl.map(1_002_880, at(t0, 555)), 560);
        assert_eq!(tl.reanchored(), 0);
    }

    #[test]
    fn timestamps_unwrap_past_u32() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(90_000, t0);
        let start = u32::MAX - 2_999;
        assert_eq!(tl.map(start, t0), 0);
        assert_eq!(tl.map(start.wrapping_add(3_000), at(t0, 33)), 33);
        assert_eq!(tl.map(start.wrapping_add(6_000), at(t0, 66)), 66);
        assert_eq!(tl.map(start.wrapping_add(90_000), at(t0, 1_000)), 1_000);
        assert_eq!(tl.reanchored(), 0);
    }

    #[test]
    fn a_pause_with_a_timestamp_jump_stays_a_gap() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(48_000, t0);
        assert_eq!(tl.map(0, t0), 0);
        assert_eq!(tl.map(96_000 + 960, at(t0, 2_020)), 2_020);
        assert_eq!(tl.reanchored(), 0);
    }

    #[test]
    fn drift_past_a_second_reanchors_to_arrival() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(48_000, t0);
        assert_eq!(tl.map(5_000, t0), 0);
        assert_eq!(tl.map(5_960, at(t0, 20)), 20);
        // A pause of 3 s whose timestamps went on as if nothing happened.
        assert_eq!(tl.map(6_920, at(t0, 3_040)), 3_040);
        assert_eq!(tl.map(7_880, at(t0, 3_060)), 3_060);
        // A new SSRC: a random new timestamp base.
        assert_eq!(tl.map(2_000_000_000, at(t0, 3_080)), 3_080);
        assert_eq!(tl.map(2_000_000_960, at(t0, 3_101)), 3_100);
        assert_eq!(tl.reanchored(), 2);
    }

    #[test]
    fn never_goes_backwards() {
        let t0 = Instant::now();
        let mut tl = Timeline::new(90_000, t0);
        assert_eq!(tl.map(0, t0), 0);
        // Timestamps ahead of the arrivals, within the allowance.
        assert_eq!(tl.map(81_000, at(t0, 10)), 900);
        // A timestamp from the past: held at the last time.
        assert_eq!(tl.map(45_000, at(t0, 20)), 900);
        // A new stream re-anchors to its arrival, 30 ms: still not before 900.
        assert_eq!(tl.map(3_000_000_000, at(t0, 30)), 900);
        assert_eq!(tl.map(3_000_090_000, at(t0, 1_030)), 1_030);
        assert_eq!(tl.reanchored(), 1);
    }
}
