//! VP8 bitstream: the size in a keyframe's header (RFC 6386 §9.1).

/// `(width, height)` of a VP8 keyframe: the 3-byte frame tag (bit 0 clear: a keyframe), the
/// start code `9d 01 2a`, then 14-bit width and height (little-endian, 2 scaling bits on top).
/// `None` for an interframe or a frame too short.
pub fn keyframe_size(frame: &[u8]) -> Option<(u32, u32)> {
    if frame.len() < 10 || frame[0] & 0x01 != 0 || frame[3..6] != [0x9D, 0x01, 0x2A] {
        return None;
    }
    let width = u16::from_le_bytes([frame[6], frame[7]]) & 0x3FFF;
    let height = u16::from_le_bytes([frame[8], frame[9]]) & 0x3FFF;
    Some((u32::from(width), u32::from(height)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_keyframe_size_and_ignores_interframes() {
        // 640x360 with a scaling bit set on the width (it is not part of the size).
        let key = [
            0x50, 0x42, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x42, 0x68, 0x01, 0xAA,
        ];
        assert_eq!(keyframe_size(&key), Some((640, 360)));
        let mut inter = key;
        inter[0] |= 1;
        assert_eq!(keyframe_size(&inter), None);
        assert_eq!(keyframe_size(&key[..9]), None);
    }
}
