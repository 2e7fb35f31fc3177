//! A small sans-IO reorder buffer: packets in by extended sequence number, out in order, with
//! a [`Reordered::Gap`] where packets were given up on.
//!
//! A missing packet is waited for at most [`MAX_WAIT`] (measured on the packets' own arrival
//! times: `now` is the caller's, the newest arrival of the track) or until [`MAX_HELD`] packets
//! are held behind it. A packet older than what was already put out is late and dropped, as is
//! a duplicate. A sequence number more than [`RESTART_DISTANCE`] away from the expected one is
//! a restarted stream (a new SSRC after an ICE restart or a republish through the same track):
//! everything held is put out and the order starts again from it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Longest a packet is held waiting for a missing one before it.
pub const MAX_WAIT: Duration = Duration::from_millis(100);
/// Most packets held waiting for a missing one.
pub const MAX_HELD: usize = 64;
/// A jump of the sequence number this large (either way) is a new stream, not loss.
pub const RESTART_DISTANCE: u64 = 3_000;

/// What comes out, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reordered<T> {
    /// The next packet.
    Packet(T),
    /// One or more packets before the next one were lost (or the stream restarted).
    Gap,
}

#[derive(Debug)]
struct Held<T> {
    arrival: Instant,
    item: T,
}

/// The buffer of one track.
#[derive(Debug)]
pub struct ReorderBuffer<T> {
    /// The sequence number to put out next; `None` before the first packet.
    next: Option<u64>,
    held: BTreeMap<u64, Held<T>>,
    /// Put out by a restart, before anything held after it.
    ready: VecDeque<Reordered<T>>,
    late: u64,
}

impl<T> Default for ReorderBuffer<T> {
    fn default() -> Self {
        ReorderBuffer {
            next: None,
            held: BTreeMap::new(),
            ready: VecDeque::new(),
            late: 0,
        }
    }
}

impl<T> ReorderBuffer<T> {
    /// Takes a packet. Call [`pop`](Self::pop) until `None` after each.
    pub fn push(&mut self, seq: u64, arrival: Instant, item: T) {
        let next = *self.next.get_or_insert(seq);
        if seq.abs_diff(next) > RESTART_DISTANCE {
            self.flush();
            self.ready.push_back(Reordered::Gap);
            self.next = Some(seq);
        } else if seq < next || self.held.contains_key(&seq) {
            self.late += 1;
            return;
        }
        self.held.insert(seq, Held { arrival, item });
    }

    /// The next packet or gap, if it is due at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<Reordered<T>> {
        if let Some(out) = self.ready.pop_front() {
            return Some(out);
        }
        let next = self.next?;
        let (&first, _) = self.held.first_key_value()?;
        if first == next {
            let held = self.held.remove(&first)?;
            self.next = Some(first + 1);
            return Some(Reordered::Packet(held.item));
        }
        let oldest = self.held.values().map(|h| h.arrival).min()?;
        if self.held.len() >= MAX_HELD || now.saturating_duration_since(oldest) >= MAX_WAIT {
            self.next = Some(first);
            return Some(Reordered::Gap);
        }
        None
    }

    /// Gives up on every missing packet: all held packets become ready, in order, with the
    /// gaps between them (the track ended).
    pub fn flush(&mut self) {
        let mut next = self.next;
        for (seq, held) in std::mem::take(&mut self.held) {
            if next.is_some_and(|n| n != seq) {
                self.ready.push_back(Reordered::Gap);
            }
            self.ready.push_back(Reordered::Packet(held.item));
            next = Some(seq + 1);
        }
        self.next = next;
    }

    /// Packets dropped as late or duplicate.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Packets held now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(buf: &mut ReorderBuffer<u64>, now: Instant) -> Vec<Option<u64>> {
        std::iter::from_fn(|| buf.pop(now))
            .map(|r| match r {
                Reordered::Packet(seq) => Some(seq),
                Reordered::Gap => None,
            })
            .collect()
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn reordered_packets_come_out_in_order() {
        let t0 = Instant::now();
        let mut buf = ReorderBuffer::default();
        let mut out = Vec::new();
        for (i, seq) in [10u64, 12, 11, 14, 13, 15].into_iter().enumerate() {
            buf.push(seq, ms(t0, i as u64), seq);
            out.extend(drain(&mut buf, ms(t0, i as u64)));
        }
        assert_eq!(out, (10..=15).map(Some).collect::<Vec<_>>());
        assert_eq!(buf.held(), 0);
    }

    #[test]
    fn a_lost_packet_is_given_up_after_the_wait() {
        let t0 = Instant::now();
        let mut buf = ReorderBuffer::default();
        buf.push(1, t0, 1);
        assert_eq!(drain(&mut buf, t0), [Some(1)]);
        buf.push(3, ms(t0, 10), 3);
        buf.push(4, ms(t0, 20), 4);
        assert_eq!(drain(&mut buf, ms(t0, 109)), []);
        // 2 is late: they wait.
        assert_eq!(drain(&mut buf, ms(t0, 110)), [None, Some(3), Some(4)]);
        // 2 arriving now is too late.
        buf.push(2, ms(t0, 120), 2);
        assert_eq!(drain(&mut buf, ms(t0, 120)), []);
        assert_eq!(buf.late(), 1);
    }

    #[test]
    fn at_most_64_packets_wait_for_a_missing_one() {
        let t0 = Instant::now();
        let mut buf = ReorderBuffer::default();
        buf.push(0, t0, 0);
        assert_eq!(drain(&mut buf, t0), [Some(0)]);
        for seq in 2..65 {
            buf.push(seq, t0, seq);
            assert_eq!(drain(&mut buf, t0), []);
        }
        assert_eq!(buf.held(), 63);
        buf.push(65, t0, 65);
        let out = drain(&mut buf, t0);
        assert_eq!(out[0], None);
        assert_eq!(out[1..], (2..=65).map(Some).collect::<Vec<_>>());
    }

    #[test]
    fn duplicates_are_dropped() {
        let t0 = Instant::now();
        let mut buf = ReorderBuffer::default();
        buf.push(5, t0, 5);
        buf.push(7, t0, 7);
        buf.push(7, t0, 7);
        buf.push(5, t0, 5);
        buf.push(6, t0, 6);
        assert_eq!(drain(&mut buf, t0), [Some(5), Some(6), Some(7)]);
        buf.push(6, t0, 6);
        assert_eq!(buf.late(), 3);
    }

    #[test]
    fn a_far_jump_is_a_restart_not_a_wait() {
        let t0 = Instant::now();
        let mut buf = ReorderBuffer::default();
        buf.push(50_000, t0, 50_000);
        buf.push(50_002, t0, 50_002);
        assert_eq!(drain(&mut buf, t0), [Some(50_000)]);
        // A new stream starting far below: what was held goes out first.
        buf.push(100, t0, 100);
        buf.push(101, t0, 101);
        assert_eq!(
            drain(&mut buf, t0),
            [None, Some(50_002), None, Some(100), Some(101)]
        );
    }

    #[test]
    fn flush_puts_out_everything_with_its_gaps() {
        let t0 = Instant::now();
        let mut buf = ReorderBuffer::default();
        buf.push(1, t0, 1);
        buf.push(3, t0, 3);
        buf.push(4, t0, 4);
        buf.push(7, t0, 7);
        assert_eq!(drain(&mut buf, t0), [Some(1)]);
        buf.flush();
        assert_eq!(drain(&mut buf, t0), [None, Some(3), Some(4), None, Some(7)]);
        buf.push(8, t0, 8);
        assert_eq!(drain(&mut buf, t0), [Some(8)]);
    }
}
