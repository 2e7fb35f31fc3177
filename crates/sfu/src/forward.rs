//! Per-subscriber RTP rewriting for one forwarded track.
//!
//! A subscriber sees one continuous stream per track even though the SFU switches between the
//! publisher's simulcast layers (each with its own SSRC, sequence numbers, timestamps and VP8
//! picture ids). [`Rewriter`] holds the offsets that map the forwarded layer onto the outgoing
//! stream and moves to a new layer only at a keyframe of that layer. Sans-IO: time comes in as
//! arguments, so it is tested with virtual time.

use std::time::Instant;

/// What the rewriter needs to know of an incoming packet.
#[derive(Debug, Clone, Copy)]
pub struct InPacket {
    /// Index of the layer (simulcast encoding) it belongs to; 0 for single-stream tracks.
    pub layer: usize,
    /// Extended sequence number in its layer's stream.
    pub seq: u64,
    /// RTP timestamp.
    pub ts: u32,
    /// Whether it starts a keyframe (always true for audio: any packet is a switch point).
    pub keyframe: bool,
    /// VP8 picture id (15-bit) and TL0PICIDX, when the payload carries them.
    pub vp8_picture_id: Option<u16>,
    /// VP8 TL0PICIDX.
    pub vp8_tl0: Option<u8>,
}

/// The rewritten header fields of a forwarded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutPacket {
    /// Outgoing extended sequence number.
    pub seq: u64,
    /// Outgoing RTP timestamp.
    pub ts: u32,
    /// Outgoing VP8 picture id, to patch into the payload descriptor.
    pub vp8_picture_id: Option<u16>,
    /// Outgoing VP8 TL0PICIDX.
    pub vp8_tl0: Option<u8>,
}

/// Rewrite state of one track towards one subscriber.
#[derive(Debug)]
pub struct Rewriter {
    clock_rate: u32,
    current: Option<usize>,
    target: Option<usize>,
    seq_offset: u64,
    ts_offset: u32,
    pid_offset: u16,
    tl0_offset: u8,
    switch_seq: u64,
    last: Option<Last>,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u64,
    ts: u32,
    pid: Option<u16>,
    tl0: Option<u8>,
    at: Instant,
}

const PID_MASK: u16 = 0x7fff;

impl Rewriter {
    /// A rewriter for a stream with this RTP clock rate (90 000 for video, 48 000 for Opus).
    pub fn new(clock_rate: u32) -> Self {
        Rewriter {
            clock_rate,
            current: None,
            target: None,
            seq_offset: 0,
            ts_offset: 0,
            pid_offset: 0,
            tl0_offset: 0,
            switch_seq: 0,
            last: None,
        }
    }

    /// The layer being forwarded now.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// The layer wanted.
    pub fn target(&self) -> Option<usize> {
        self.target
    }

    /// Choose the layer to forward (`None`: forward nothing). Takes effect at its next keyframe.
    pub fn set_target(&mut self, layer: Option<usize>) {
        self.target = layer;
        if layer.is_none() {
            self.current = None;
        }
    }

    /// Stop forwarding until the target layer's next keyframe (after packets were lost on the
    /// way out), continuing the outgoing numbering from there.
    pub fn resync(&mut self) {
        self.current = None;
    }

    /// Whether the target layer is waiting for a keyframe (so one should be requested).
    pub fn waiting_for_keyframe(&self) -> bool {
        self.target.is_some() && self.target != self.current
    }

    /// Map an incoming packet onto the outgoing stream, or drop it (`None`).
    pub fn rewrite(&mut self, p: &InPacket, now: Instant) -> Option<OutPacket> {
        let target = self.target?;
        if p.layer == target && self.current != Some(target) && p.keyframe {
            self.switch_to(p, now);
        }
        if self.current != Some(p.layer) {
            return None;
        }
        if p.seq < self.switch_seq {
            // A late packet of this layer from before we switched onto it.
            return None;
        }
        let out = OutPacket {
            seq: p.seq.wrapping_add(self.seq_offset),
            ts: p.ts.wrapping_add(self.ts_offset),
            vp8_picture_id: p
                .vp8_picture_id
                .map(|pid| pid.wrapping_add(self.pid_offset) & PID_MASK),
            vp8_tl0: p.vp8_tl0.map(|t| t.wrapping_add(self.tl0_offset)),
        };
        let newer = self.last.is_none_or(|l| out.seq > l.seq);
        if newer {
            self.last = Some(Last {
                seq: out.seq,
                ts: out.ts,
                pid: out.vp8_picture_id.or(self.last.and_then(|l| l.pid)),
                tl0: out.vp8_tl0.or(self.last.and_then(|l| l.tl0)),
                at: now,
            });
        }
        Some(out)
    }

    /// Start forwarding `p.layer` from this keyframe on, continuing the outgoing numbering.
    fn switch_to(&mut self, p: &InPacket, now: Instant) {
        self.current = Some(p.layer);
        self.switch_seq = p.seq;
        let Some(last) = self.last else {
            // First packet ever: keep the incoming numbering.
            self.seq_offset = 0;
            self.ts_offset = 0;
            self.pid_offset = 0;
            self.tl0_offset = 0;
            return;
        };
        let out_seq = last.seq + 1;
        self.seq_offset = out_seq.wrapping_sub(p.seq);
        // Advance the timestamp by the wall time since the last forwarded packet (at least one
        // tick) so the receiver's jitter buffer sees time moving at the right pace.
        let elapsed = now.saturating_duration_since(last.at);
        let ticks = (elapsed.as_secs_f64() * f64::from(self.clock_rate)) as u32;
        let out_ts = last.ts.wrapping_add(ticks.max(1));
        self.ts_offset = out_ts.wrapping_sub(p.ts);
        if let (Some(in_pid), Some(last_pid)) = (p.vp8_picture_id, last.pid) {
            let out_pid = last_pid.wrapping_add(1) & PID_MASK;
            self.pid_offset = out_pid.wrapping_sub(in_pid) & PID_MASK;
        }
        if let (Some(in_tl0), Some(last_tl0)) = (p.vp8_tl0, last.tl0) {
            self.tl0_offset = last_tl0.wrapping_add(1).wrapping_sub(in_tl0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pkt(layer: usize, seq: u64, ts: u32, keyframe: bool, pid: u16) -> InPacket {
        InPacket {
            layer,
            seq,
            ts,
            keyframe,
            vp8_picture_id: Some(pid),
            vp8_tl0: Some(pid as u8),
        }
    }

    #[test]
    fn waits_for_a_keyframe_before_forwarding() {
        let now = Instant::now();
        let mut r = Rewriter::new(90_000);
        r.set_target(Some(0));
        assert!(r.waiting_for_keyframe());
        assert_eq!(r.rewrite(&pkt(0, 10, 1000, false, 5), now), None);
        let out = r.rewrite(&pkt(0, 11, 4000, true, 6), now).unwrap();
        assert_eq!((out.seq, out.ts, out.vp8_picture_id), (11, 4000, Some(6)));
        assert!(!r.waiting_for_keyframe());
        let out = r.rewrite(&pkt(0, 12, 7000, false, 7), now).unwrap();
        assert_eq!((out.seq, out.ts), (12, 7000));
    }

    #[test]
    fn layer_switch_keeps_numbering_continuous() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000);
        r.set_target(Some(0));
        r.rewrite(&pkt(0, 100, 9000, true, 40), t0).unwrap();
        r.rewrite(&pkt(0, 101, 12000, false, 41), t0).unwrap();
        // Ask for layer 2; its packets are dropped until its keyframe, layer 0 goes on.
        r.set_target(Some(2));
        assert_eq!(r.rewrite(&pkt(2, 5000, 777_000, false, 900), t0), None);
        assert!(r.rewrite(&pkt(0, 102, 15000, false, 42), t0).is_some());
        let t1 = t0 + Duration::from_millis(33);
        let out = r.rewrite(&pkt(2, 5001, 780_000, true, 901), t1).unwrap();
        assert_eq!(out.seq, 103, "sequence continues across the switch");
        assert_eq!(
            out.ts,
            15000 + 2970,
            "timestamp advances by the 33 ms that passed"
        );
        assert_eq!(out.vp8_picture_id, Some(43));
        assert_eq!(out.vp8_tl0, Some(43));
        // The old layer is no longer forwarded; the new one continues with the same offsets.
        assert_eq!(r.rewrite(&pkt(0, 103, 18000, true, 43), t1), None);
        let out = r.rewrite(&pkt(2, 5002, 783_000, false, 902), t1).unwrap();
        assert_eq!(
            (out.seq, out.ts, out.vp8_picture_id),
            (104, 20970, Some(44))
        );
    }

    #[test]
    fn late_packets_from_before_the_switch_are_dropped() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000);
        r.set_target(Some(1));
        r.rewrite(&pkt(1, 50, 0, true, 1), t0).unwrap();
        assert_eq!(r.rewrite(&pkt(1, 49, 0, false, 0), t0), None);
    }

    #[test]
    fn picture_id_wraps_in_15_bits() {
        let t0 = Instant::now();
        let mut r = Rewriter::new(90_000);
        r.set_target(Some(0));
        r.rewrite(&pkt(0, 1, 0, true, 0x7fff), t0).unwrap();
        r.set_target(Some(1));
        let out = r.rewrite(&pkt(1, 900, 0, true, 12), t0).unwrap();
        assert_eq!(out.vp8_picture_id, Some(0));
    }

    #[test]
    fn no_target_forwards_nothing() {
        let mut r = Rewriter::new(48_000);
        assert_eq!(r.rewrite(&pkt(0, 1, 0, true, 0), Instant::now()), None);
    }
}
