//! What a light subscriber learns from a received RTP packet without depacketizing it:
//! sequence accounting (received, expected, lost) and whether a VP8 keyframe starts here.
//! Sans I/O, unit tested.

/// Whether this VP8 RTP payload starts a keyframe (RFC 7741): the payload descriptor has the
/// start-of-partition bit set with partition index 0, and the VP8 payload header that follows
/// has its inverse key frame bit (P) clear.
pub fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let start = b0 & 0x10 != 0;
    let partition = b0 & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        // X: the extension byte says which optional fields follow.
        let Some(&x) = payload.get(i) else {
            return false;
        };
        i += 1;
        if x & 0x80 != 0 {
            // I: picture id, 7 or 15 bits (M bit).
            let Some(&pid) = payload.get(i) else {
                return false;
            };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // T and/or K: TID/Y/KEYIDX
        }
    }
    payload.get(i).is_some_and(|header| header & 0x01 == 0)
}

/// Counts of one received RTP stream (one SSRC), from extended sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamCounter {
    first: Option<u64>,
    max: u64,
    /// Packets received (str0m drops duplicates; RTX repairs count once).
    pub received: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Frames: marker bits for video, packets for audio.
    pub frames: u64,
    /// Keyframe starts (video).
    pub keyframes: u64,
}

impl StreamCounter {
    /// Count a packet with extended sequence number `seq`. Returns how many packets the
    /// stream is now expected to have had more than before (0 for a late or reordered one),
    /// so a caller can keep running totals without walking every stream.
    pub fn on_packet(&mut self, seq: u64, bytes: usize, frame_end: bool, keyframe: bool) -> u64 {
        self.received += 1;
        self.bytes += bytes as u64;
        if frame_end {
            self.frames += 1;
        }
        if keyframe {
            self.keyframes += 1;
        }
        match self.first {
            None => {
                self.first = Some(seq);
                self.max = seq;
                1
            }
            Some(_) if seq > self.max => {
                let more = seq - self.max;
                self.max = seq;
                more
            }
            Some(_) => 0,
        }
    }

    /// Packets the stream should have delivered so far: from the first received sequence
    /// number to the highest.
    pub fn expected(&self) -> u64 {
        self.first.map_or(0, |f| self.max - f + 1)
    }

    /// Packets missing between the first and the highest sequence number seen.
    pub fn lost(&self) -> u64 {
        self.expected().saturating_sub(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_start_is_found_behind_every_descriptor_form() {
        // Minimal descriptor: S=1, PID=0, then a keyframe payload header (P=0).
        assert!(vp8_starts_keyframe(&[0x10, 0x00, 0x00, 0x00]));
        // Same but an interframe (P=1).
        assert!(!vp8_starts_keyframe(&[0x10, 0x01, 0x00, 0x00]));
        // Not the start of a partition.
        assert!(!vp8_starts_keyframe(&[0x00, 0x00]));
        // Start of partition 1 is not a frame start.
        assert!(!vp8_starts_keyframe(&[0x11, 0x00]));
        // X with I (15-bit picture id), L and T: 1 + 1 + 2 + 1 + 1 bytes, then the header.
        assert!(vp8_starts_keyframe(&[
            0x90, 0xe0, 0x80, 0x05, 0x07, 0x20, 0x00
        ]));
        assert!(!vp8_starts_keyframe(&[
            0x90, 0xe0, 0x80, 0x05, 0x07, 0x20, 0x01
        ]));
        // X with a 7-bit picture id only.
        assert!(vp8_starts_keyframe(&[0x90, 0x80, 0x05, 0x9c]));
        // Truncated packets are not keyframes.
        assert!(!vp8_starts_keyframe(&[]));
        assert!(!vp8_starts_keyframe(&[0x90]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80, 0x85]));
    }

    #[test]
    fn str0m_descriptors_of_the_bot_media_are_recognised() {
        // What str0m's VP8 packetizer writes: X=1, I=1 with a 15-bit picture id, S=1.
        let media = orbita_bot::media_file::MediaLibrary::embedded().unwrap();
        let key = &media.layers[2].frames[0];
        let delta = &media.layers[2].frames[1];
        assert!(key.keyframe && !delta.keyframe);
        let mut pkt = vec![0x90, 0x80, 0x81, 0x23];
        pkt.extend_from_slice(&key.data[..8]);
        assert!(vp8_starts_keyframe(&pkt));
        let mut pkt = vec![0x90, 0x80, 0x81, 0x24];
        pkt.extend_from_slice(&delta.data[..8]);
        assert!(!vp8_starts_keyframe(&pkt));
    }

    #[test]
    fn counter_finds_gaps_and_ignores_late_packets_for_expected() {
        let mut c = StreamCounter::default();
        assert_eq!(c.on_packet(100, 10, false, true), 1);
        assert_eq!(c.on_packet(101, 10, true, false), 1);
        assert_eq!(c.on_packet(104, 10, true, false), 3, "102 and 103 missing");
        assert_eq!((c.expected(), c.received, c.lost()), (5, 3, 2));
        // 103 arrives late (reordered or repaired): no longer lost.
        assert_eq!(c.on_packet(103, 10, false, false), 0);
        assert_eq!(c.lost(), 1);
        assert_eq!((c.bytes, c.frames, c.keyframes), (40, 2, 1));
    }
}
