//! H.264 bitstream: NAL units of a frame, the frame size in a sequence parameter set (with its
//! cropping), and the avcC record (ISO/IEC 14496-15 §5.2.4.1) that is the Matroska
//! CodecPrivate of `V_MPEG4/ISO/AVC`. Frames are kept as str0m's depacketizer gives them in AVC
//! mode: NAL units with 4-byte big-endian length prefixes.

/// NAL unit type of a coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;

const NAL_STAP_A: u8 = 24;
const NAL_FU_A: u8 = 28;

/// The NAL units of a frame in AVC form (4-byte length prefixes). Stops at a truncated one.
pub fn nal_units(frame: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = frame;
    std::iter::from_fn(move || {
        let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let nal = rest.get(4..4 + len)?;
        rest = &rest[4 + len..];
        Some(nal)
    })
}

/// The NAL unit type of a NAL unit (its first byte's low 5 bits).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

/// Whether an RTP payload (RFC 6184) starts an access unit: a parameter set, SEI or access
/// unit delimiter, or the first slice of a picture (`first_mb_in_slice` 0: its first bit is
/// 1), as a single NAL unit, first in a STAP-A, or in the first fragment of an FU-A. A payload
/// that continues a picture (its second slice, a middle fragment) does not.
pub fn starts_access_unit(payload: &[u8]) -> bool {
    let (nal_type, slice_data) = match payload.first().map(|b| b & 0x1F) {
        Some(1..=23) => (payload[0] & 0x1F, payload.get(1)),
        Some(NAL_STAP_A) => (payload.get(3).map_or(0, |b| b & 0x1F), payload.get(4)),
        Some(NAL_FU_A) => match payload.get(1) {
            Some(header) if header & 0x80 != 0 => (header & 0x1F, payload.get(2)),
            _ => return false,
        },
        _ => return false,
    };
    match nal_type {
        1 | NAL_IDR => slice_data.is_some_and(|b| b & 0x80 != 0),
        6..=9 => true,
        _ => false,
    }
}

/// The size a sequence parameter set (a NAL unit, header byte included) declares: its
/// macroblocks minus its frame cropping. `None` if it does not parse.
pub fn sps_size(sps: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape(sps.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)?;
    r.bits(16)?; // constraint flags, level_idc
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            for _ in 0..r.ue()?.min(255) {
                r.se()?; // offset_for_ref_frame
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_map_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? {
        left = r.ue()?;
        right = r.ue()?;
        top = r.ue()?;
        bottom = r.ue()?;
    }
    // ChromaArrayType is 0 for monochrome or separately coded colour planes.
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (sub_width, sub_height) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let field_factor = if frame_mbs_only { 1 } else { 2 };
    let (crop_x, crop_y) = if chroma_array_type == 0 {
        (1, field_factor)
    } else {
        (sub_width, sub_height * field_factor)
    };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right))?;
    let height = (height_map_units * 16 * field_factor).checked_sub(crop_y * (top + bottom))?;
    (width > 0 && height > 0).then_some((width, height))
}

/// The avcC record for one SPS and one PPS (NAL units with their header byte), with 4-byte
/// NAL unit lengths. `None` if the SPS is too short to carry a profile and level.
pub fn avcc(sps: &[u8], pps: &[u8]) -> Option<Vec<u8>> {
    let profile = sps.get(1..4)?;
    let mut out = Vec::with_capacity(11 + sps.len() + pps.len());
    out.push(1); // configurationVersion
    out.extend_from_slice(profile); // profile, compatibility, level
    out.push(0xFC | 3); // lengthSizeMinusOne: 4-byte lengths
    out.push(0xE0 | 1); // one SPS
    out.extend_from_slice(&u16::try_from(sps.len()).ok()?.to_be_bytes());
    out.extend_from_slice(sps);
    out.push(1); // one PPS
    out.extend_from_slice(&u16::try_from(pps.len()).ok()?.to_be_bytes());
    out.extend_from_slice(pps);
    Some(out)
}

fn skip_scaling_list(r: &mut BitReader, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + r.se()? + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// The RBSP of a NAL unit's payload: emulation prevention bytes (`00 00 03`) removed.
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Reads bits MSB first, and Exp-Golomb codes.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn bit(&mut self) -> Option<bool> {
        let byte = self.data.get(self.pos / 8)?;
        let bit = byte >> (7 - self.pos % 8) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |v, _| Some((v << 1) | u32::from(self.bit()?)))
    }

    /// ue(v): unsigned Exp-Golomb (at most 31 leading zeros).
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        Some(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    /// se(v): signed Exp-Golomb.
    fn se(&mut self) -> Option<i64> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes bits and Exp-Golomb codes, to make parameter sets.
    #[derive(Default)]
    struct BitWriter {
        bits: Vec<bool>,
    }

    impl BitWriter {
        fn bits(&mut self, n: u32, v: u32) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push(v >> i & 1 == 1);
            }
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let v = v + 1;
            let len = 32 - v.leading_zeros();
            self.bits(len - 1, 0).bits(len, v)
        }
        fn se(&mut self, v: i32) -> &mut Self {
            let k = if v > 0 { 2 * v - 1 } else { -2 * v };
            self.ue(k as u32)
        }
        fn nal(&mut self) -> Vec<u8> {
            self.bits(1, 1); // rbsp_stop_one_bit
            while self.bits.len() & 7 != 0 {
                self.bits.push(false);
            }
            let mut out = vec![0x67];
            out.extend(
                self.bits
                    .chunks(8)
                    .map(|c| c.iter().fold(0u8, |b, &bit| (b << 1) | u8::from(bit))),
            );
            out
        }
    }

    /// A baseline SPS as WebRTC sends (42e01f), 640x360: 40x23 macroblocks cropped by 8 rows.
    fn baseline_360p() -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(8, 66).bits(8, 0xE0).bits(8, 31).ue(0);
        w.ue(0).ue(0).ue(4).ue(1).bits(1, 0); // frame_num, poc type 0, poc lsb, refs, gaps
        w.ue(39).ue(22).bits(1, 1).bits(1, 1); // 40x23 MBs, frame_mbs_only, direct_8x8
        w.bits(1, 1).ue(0).ue(0).ue(0).ue(4); // cropping: 4 * 2 rows off the bottom
        w.bits(1, 0); // no VUI
        w.nal()
    }

    #[test]
    fn sps_size_applies_cropping() {
        assert_eq!(sps_size(&baseline_360p()), Some((640, 360)));
    }

    #[test]
    fn sps_size_of_a_high_profile_with_scaling_lists_and_poc_type_1() {
        let mut w = BitWriter::default();
        w.bits(8, 100).bits(8, 0).bits(8, 40).ue(0);
        w.ue(1).ue(0).ue(0).bits(1, 0); // 4:2:0, 8 bit, 8 bit, no bypass
        w.bits(1, 1); // scaling matrix present
        w.bits(1, 1); // list 0 present: deltas then a zero-ending
        w.se(-8);
        for _ in 1..6 {
            w.bits(1, 0);
        }
        w.bits(1, 0).bits(1, 0); // the two 8x8 lists absent
        w.ue(0).ue(1).bits(1, 0).se(-2).se(1).ue(2).se(3).se(-3);
        w.ue(3).bits(1, 0);
        w.ue(119).ue(67).bits(1, 1).bits(1, 1); // 1920x1088
        w.bits(1, 1).ue(0).ue(0).ue(0).ue(4); // down to 1080
        w.bits(1, 0);
        assert_eq!(sps_size(&w.nal()), Some((1920, 1080)));
    }

    #[test]
    fn sps_with_emulation_prevention_and_truncation() {
        // A 16x16 4:0:0 (monochrome) SPS of a high profile: its constraint flags and level are
        // 00 00, so an emulation prevention byte after them must be skipped.
        let mut w = BitWriter::default();
        w.bits(8, 100).bits(8, 0).bits(8, 0).ue(0);
        w.ue(0).ue(0).ue(0).bits(1, 0).bits(1, 0);
        w.ue(0).ue(0).ue(0).ue(1).bits(1, 0);
        w.ue(0).ue(0).bits(1, 1).bits(1, 1).bits(1, 0).bits(1, 0);
        let raw = w.nal();
        assert_eq!(
            raw[2..4],
            [0, 0],
            "the test SPS has 00 00 after the profile"
        );
        let mut escaped = raw[..4].to_vec();
        escaped.push(3);
        escaped.extend_from_slice(&raw[4..]);
        assert_eq!(sps_size(&escaped), Some((16, 16)));
        assert_eq!(sps_size(&escaped[..6]), None);
    }

    #[test]
    fn avcc_layout() {
        let sps = baseline_360p();
        let pps = [0x68, 0xCE, 0x3C, 0x80];
        let avcc = avcc(&sps, &pps).unwrap();
        assert_eq!(avcc[..6], [1, 66, 0xE0, 31, 0xFF, 0xE1]);
        assert_eq!(avcc[6..8], (sps.len() as u16).to_be_bytes());
        assert_eq!(avcc[8..8 + sps.len()], sps[..]);
        assert_eq!(avcc[8 + sps.len()..], [1, 0, 4, 0x68, 0xCE, 0x3C, 0x80]);
    }

    #[test]
    fn nal_units_split_length_prefixed_frames() {
        let frame = [0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x68, 0, 0, 0, 9, 0x65];
        let nals: Vec<&[u8]> = nal_units(&frame).collect();
        assert_eq!(nals, [&[0x67, 1][..], &[0x68][..]]);
        assert_eq!(nal_type(nals[0]), NAL_SPS);
    }

    #[test]
    fn access_unit_starts() {
        assert!(starts_access_unit(&[0x65, 0x88])); // IDR, first_mb 0
        assert!(!starts_access_unit(&[0x65, 0x40])); // IDR, a later slice
        assert!(starts_access_unit(&[0x78, 0, 2, 0x67, 0x42])); // STAP-A of an SPS
        assert!(starts_access_unit(&[0x7C, 0x85, 0x88])); // FU-A start of an IDR
        assert!(!starts_access_unit(&[0x7C, 0x05, 0x88])); // FU-A middle
        assert!(!starts_access_unit(&[0x7C, 0x45, 0x88])); // FU-A end
        assert!(starts_access_unit(&[0x06, 0x05])); // SEI
    }
}
