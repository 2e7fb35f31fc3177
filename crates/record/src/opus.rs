//! Opus in WebM: the identification header (OpusHead, RFC 7845 §5.1) that is the track's
//! CodecPrivate. Browsers negotiate `opus/48000/2`: the header says two channels (a mono
//! encoder's packets decode to both), input rate 48 kHz, no gain, mapping family 0.

/// The channel count browsers' `opus/48000/2` declares.
pub const CHANNELS: u8 = 2;

/// Pre-skip written for a recording: 0 samples. A recording joins an Opus stream already
/// running, past the encoder's priming samples (RFC 7845's 312 at a stream's very start).
pub const PRE_SKIP: u16 = 0;

/// The 19-byte OpusHead for `channels` (1 or 2) and `pre_skip` samples at 48 kHz.
pub fn opus_head(channels: u8, pre_skip: u16) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&48_000u32.to_le_bytes()); // input sample rate (informative)
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0: mono or stereo, no table
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_head_is_rfc_7845_layout() {
        let head = opus_head(2, 312);
        assert_eq!(
            head,
            [
                b'O', b'p', b'u', b's', b'H', b'e', b'a', b'd', 1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0,
                0, 0, 0
            ]
        );
    }
}
