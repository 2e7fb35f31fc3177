//! Codec facts the forwarder needs from RTP payloads: does this packet start a keyframe, and
//! what resolution does a VP8 keyframe carry. Pure functions on payload bytes.

use str0m::format::Codec;
use str0m::rtp::Vp8Descriptor;

/// Whether an RTP payload of `codec` starts a keyframe (the first packet of one).
pub fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => Vp8Descriptor::parse(payload)
            .map(|d| d.starts_keyframe(payload))
            .unwrap_or(false),
        Codec::Vp9 => vp9_starts_keyframe(payload),
        Codec::H264 => h264_starts_keyframe(payload),
        _ => false,
    }
}

/// VP9 (RFC 9628 payload descriptor): a start of frame (B=1) that is not inter-predicted
/// (P=0), in spatial layer 0 when layer indices are present.
fn vp9_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let picture_id = b0 & 0x80 != 0;
    let inter_predicted = b0 & 0x40 != 0;
    let layer_indices = b0 & 0x20 != 0;
    let flexible = b0 & 0x10 != 0;
    let begin = b0 & 0x08 != 0;
    if inter_predicted || !begin {
        return false;
    }
    if !layer_indices {
        return true;
    }
    let mut i = 1;
    if picture_id {
        let Some(&p) = payload.get(i) else {
            return false;
        };
        i += if p & 0x80 != 0 { 2 } else { 1 };
    }
    let Some(&layers) = payload.get(i) else {
        return false;
    };
    let spatial_id = (layers >> 1) & 0x07;
    let _ = flexible;
    spatial_id == 0
}

/// H.264 (RFC 6184): an IDR slice (5) or SPS (7), alone, in a STAP-A, or starting an FU-A.
fn h264_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let is_key = |nal_type: u8| nal_type == 5 || nal_type == 7;
    match b0 & 0x1f {
        24 => {
            // STAP-A: 16-bit sizes followed by NAL units.
            let mut i = 1;
            while i + 2 < payload.len() {
                let size = u16::from_be_bytes([payload[i], payload[i + 1]]) as usize;
                let Some(&nal) = payload.get(i + 2) else {
                    break;
                };
                if is_key(nal & 0x1f) {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|&fu| fu & 0x80 != 0 && is_key(fu & 0x1f)),
        t => is_key(t),
    }
}

/// Width and height of a VP8 keyframe whose first RTP packet this is (the frame header
/// follows the payload descriptor: 3-byte tag, start code 9d 01 2a, 14-bit sizes).
pub fn vp8_keyframe_size(payload: &[u8]) -> Option<(u32, u32)> {
    let d = Vp8Descriptor::parse(payload).ok()?;
    if !d.starts_keyframe(payload) {
        return None;
    }
    let header_len = payload_offset(payload)?;
    let frame = payload.get(header_len..)?;
    if frame.len() < 10 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    Some((u32::from(w), u32::from(h)))
}

/// Length of the VP8 payload descriptor (RFC 7741 section 4.2).
fn payload_offset(payload: &[u8]) -> Option<usize> {
    let b0 = *payload.first()?;
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let x = *payload.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            let p = *payload.get(i)?;
            i += if p & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    (i < payload.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VP8 keyframe start: descriptor with X, 15-bit picture id, then the frame header.
    fn vp8_key(width: u16, height: u16) -> Vec<u8> {
        let mut p = vec![0x90, 0x80, 0x81, 0x23];
        p.extend([0x50, 0x2a, 0x00, 0x9d, 0x01, 0x2a]);
        p.extend(width.to_le_bytes());
        p.extend(height.to_le_bytes());
        p.extend([0u8; 8]);
        p
    }

    #[test]
    fn vp8_keyframe_and_size() {
        let key = vp8_key(1280, 720);
        assert!(starts_keyframe(Codec::Vp8, &key));
        assert_eq!(vp8_keyframe_size(&key), Some((1280, 720)));
        let mut delta = key.clone();
        delta[4] |= 0x01; // P bit: inter frame
        assert!(!starts_keyframe(Codec::Vp8, &delta));
        assert_eq!(vp8_keyframe_size(&delta), None);
        let mut cont = key.clone();
        cont[0] &= !0x10; // not the start of the partition
        assert!(!starts_keyframe(Codec::Vp8, &cont));
    }

    #[test]
    fn h264_idr_in_every_packetization() {
        assert!(starts_keyframe(Codec::H264, &[0x65, 1, 2]));
        assert!(!starts_keyframe(Codec::H264, &[0x41, 1, 2]));
        // STAP-A with SPS then PPS.
        assert!(starts_keyframe(
            Codec::H264,
            &[0x78, 0, 2, 0x67, 0, 0, 2, 0x68, 0]
        ));
        // FU-A start of an IDR slice, and its continuation.
        assert!(starts_keyframe(Codec::H264, &[0x7c, 0x85, 9]));
        assert!(!starts_keyframe(Codec::H264, &[0x7c, 0x05, 9]));
    }

    #[test]
    fn vp9_start_of_intra_frame() {
        assert!(starts_keyframe(Codec::Vp9, &[0x08, 0]));
        assert!(!starts_keyframe(Codec::Vp9, &[0x48, 0]));
        assert!(!starts_keyframe(Codec::Vp9, &[0x00, 0]));
    }

    #[test]
    fn garbage_is_never_a_keyframe() {
        for codec in [Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Opus] {
            assert!(!starts_keyframe(codec, &[]));
        }
        assert_eq!(vp8_keyframe_size(&[0x90]), None);
    }
}
