//! VP9: the RTP payload descriptor (RFC 9628 §4.2), the frame size in a frame's uncompressed
//! header (VP9 bitstream specification §6.2), and superframes (its Annex B), which put the
//! frames of one picture's spatial layers in one Matroska block.

/// Most spatial layers a scalability structure describes (N_S is 3 bits).
pub const MAX_SPATIAL_LAYERS: usize = 8;
/// Most frames in a superframe (its index counts 3 bits).
pub const MAX_SUPERFRAME_FRAMES: usize = 8;

/// A parsed VP9 payload descriptor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// I: the picture ID (7 or 15 bits).
    pub picture_id: Option<u16>,
    /// P: the frame uses inter-picture prediction (not a keyframe's base layer).
    pub inter_picture: bool,
    /// F: flexible mode (reference indices in the descriptor).
    pub flexible: bool,
    /// B: the first packet of a layer frame.
    pub begins_frame: bool,
    /// E: the last packet of a layer frame.
    pub ends_frame: bool,
    /// Z: the frame is not used for inter-layer prediction by upper spatial layers.
    pub not_upper_reference: bool,
    /// L: the layer indices.
    pub layer: Option<LayerIndices>,
    /// Non-flexible mode with L: the TL0PICIDX.
    pub tl0_pic_idx: Option<u8>,
    /// Flexible mode with P: the reference picture ID differences (up to 3).
    pub p_diffs: Vec<u8>,
    /// V: the scalability structure.
    pub scalability: Option<Scalability>,
    /// Where the VP9 frame data starts in the payload.
    pub header_len: usize,
}

/// The layer indices of a descriptor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerIndices {
    /// T: the temporal layer.
    pub temporal: u8,
    /// U: a switching-up point.
    pub switching_up: bool,
    /// S: the spatial layer.
    pub spatial: u8,
    /// D: the frame depends on the spatial layer below it in the same picture.
    pub inter_layer_dependency: bool,
}

/// The scalability structure of a descriptor (its picture group description is skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scalability {
    /// N_S + 1: the number of spatial layers.
    pub spatial_layers: u8,
    /// Y: each spatial layer's width and height, lowest first.
    pub sizes: Vec<(u16, u16)>,
}

impl Descriptor {
    /// The spatial layer (0 without layer indices).
    pub fn spatial(&self) -> u8 {
        self.layer.map_or(0, |l| l.spatial)
    }
}

/// Parses the descriptor at the start of an RTP payload. `None` if it is truncated, has more
/// than 3 reference differences, or leaves no frame data.
pub fn parse_descriptor(payload: &[u8]) -> Option<Descriptor> {
    let mut at = 0;
    let mut next = || {
        let b = payload.get(at).copied();
        at += 1;
        b
    };
    let first = next()?;
    let mut d = Descriptor {
        inter_picture: first & 0x40 != 0,
        flexible: first & 0x10 != 0,
        begins_frame: first & 0x08 != 0,
        ends_frame: first & 0x04 != 0,
        not_upper_reference: first & 0x01 != 0,
        ..Descriptor::default()
    };
    if first & 0x80 != 0 {
        let b = next()?;
        d.picture_id = Some(if b & 0x80 != 0 {
            u16::from(b & 0x7F) << 8 | u16::from(next()?)
        } else {
            u16::from(b)
        });
    }
    if first & 0x20 != 0 {
        let b = next()?;
        d.layer = Some(LayerIndices {
            temporal: b >> 5,
            switching_up: b & 0x10 != 0,
            spatial: (b >> 1) & 0x07,
            inter_layer_dependency: b & 0x01 != 0,
        });
        if !d.flexible {
            d.tl0_pic_idx = Some(next()?);
        }
    }
    if d.flexible && d.inter_picture {
        loop {
            let b = next()?;
            if d.p_diffs.len() == 3 {
                return None;
            }
            d.p_diffs.push(b >> 1);
            if b & 0x01 == 0 {
                break;
            }
        }
    }
    if first & 0x02 != 0 {
        let b = next()?;
        let mut ss = Scalability {
            spatial_layers: (b >> 5) + 1,
            sizes: Vec::new(),
        };
        if b & 0x10 != 0 {
            for _ in 0..ss.spatial_layers {
                let width = u16::from_be_bytes([next()?, next()?]);
                let height = u16::from_be_bytes([next()?, next()?]);
                ss.sizes.push((width, height));
            }
        }
        if b & 0x08 != 0 {
            for _ in 0..next()? {
                let group = next()?;
                for _ in 0..(group >> 2) & 0x03 {
                    next()?;
                }
            }
        }
        d.scalability = Some(ss);
    }
    d.header_len = at;
    (at < payload.len()).then_some(d)
}

/// The size a frame's uncompressed header gives: a keyframe's or intra-only frame's, or an
/// inter frame's that states it rather than taking a reference's. `None` otherwise (a shown
/// existing frame, a size from a reference, a truncated header).
pub fn frame_size(frame: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits {
        data: frame,
        pos: 0,
    };
    if r.read(2)? != 2 {
        return None; // frame_marker
    }
    let profile = r.read(1)? | r.read(1)? << 1;
    if profile == 3 {
        r.read(1)?;
    }
    if r.read(1)? == 1 {
        return None; // show_existing_frame
    }
    let keyframe = r.read(1)? == 0;
    let show_frame = r.read(1)? == 1;
    let error_resilient = r.read(1)? == 1;
    if keyframe {
        sync_code(&mut r)?;
        color_config(&mut r, profile)?;
        return size(&mut r);
    }
    let intra_only = if show_frame { false } else { r.read(1)? == 1 };
    if !error_resilient {
        r.read(2)?; // reset_frame_context
    }
    if intra_only {
        sync_code(&mut r)?;
        if profile > 0 {
            color_config(&mut r, profile)?;
        }
        r.read(8)?; // refresh_frame_flags
        return size(&mut r);
    }
    r.read(8)?; // refresh_frame_flags
    r.read(12)?; // three ref_frame_idx (3 bits) and sign bias (1 bit)
    for _ in 0..3 {
        if r.read(1)? == 1 {
            return None; // found_ref: the size of a reference frame
        }
    }
    size(&mut r)
}

fn sync_code(r: &mut Bits) -> Option<()> {
    (r.read(24)? == 0x49_8342).then_some(())
}

fn color_config(r: &mut Bits, profile: u32) -> Option<()> {
    if profile >= 2 {
        r.read(1)?; // ten_or_twelve_bit
    }
    let color_space = r.read(3)?;
    if color_space != 7 {
        r.read(1)?; // color_range
        if profile == 1 || profile == 3 {
            r.read(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        r.read(1)?; // reserved_zero
    }
    Some(())
}

fn size(r: &mut Bits) -> Option<(u32, u32)> {
    Some((r.read(16)? + 1, r.read(16)? + 1))
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |v, _| {
            let byte = self.data.get(self.pos / 8)?;
            let bit = byte >> (7 - self.pos % 8) & 1;
            self.pos += 1;
            Some(v << 1 | u32::from(bit))
        })
    }
}

/// The frames of a buffer: those its superframe index lists, or the buffer itself.
pub fn split_superframe(data: &[u8]) -> Vec<&[u8]> {
    let whole = vec![data];
    let Some(&marker) = data.last() else {
        return whole;
    };
    if marker & 0xE0 != 0xC0 {
        return whole;
    }
    let mag = usize::from((marker >> 3) & 0x03) + 1;
    let frames = usize::from(marker & 0x07) + 1;
    let index_len = 2 + mag * frames;
    if data.len() < index_len || data[data.len() - index_len] != marker {
        return whole;
    }
    let mut out = Vec::with_capacity(frames);
    let mut at = 0;
    let index = &data[data.len() - index_len + 1..data.len() - 1];
    for size in index.chunks(mag) {
        let size = size
            .iter()
            .rev()
            .fold(0usize, |v, &b| (v << 8) | usize::from(b));
        match data.get(at..at + size) {
            Some(frame) if at + size <= data.len() - index_len => out.push(frame),
            _ => return whole,
        }
        at += size;
    }
    out
}

/// One buffer for the frames of a picture: the frame itself if it is alone, else a superframe
/// (the frames, then their index). Frames that are superframes themselves are flattened.
/// `None` beyond [`MAX_SUPERFRAME_FRAMES`] frames or a frame over 4 GiB.
pub fn superframe(frames: &[&[u8]]) -> Option<Vec<u8>> {
    let frames: Vec<&[u8]> = frames.iter().flat_map(|f| split_superframe(f)).collect();
    if let [one] = frames[..] {
        return Some(one.to_vec());
    }
    if frames.is_empty() || frames.len() > MAX_SUPERFRAME_FRAMES {
        return None;
    }
    let largest = frames.iter().map(|f| f.len()).max()?;
    let mag = (1..=4usize).find(|&m| largest < 1usize << (8 * m))?;
    let marker = 0xC0 | ((mag as u8 - 1) << 3) | (frames.len() as u8 - 1);
    let total: usize = frames.iter().map(|f| f.len()).sum();
    let mut out = Vec::with_capacity(total + 2 + mag * frames.len());
    for frame in &frames {
        out.extend_from_slice(frame);
    }
    out.push(marker);
    for frame in &frames {
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes()[..mag]);
    }
    out.push(marker);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_of_a_non_flexible_keyframe_with_scalability_structure() {
        // I (15-bit id), L, B, V: picture 300, T0 S0, TL0PICIDX 7, two layers with sizes.
        let payload = [
            0x80 | 0x20 | 0x08 | 0x02,
            0x80 | 0x01,
            0x2C,
            0x00,
            7,
            (1 << 5) | 0x10,
            0x01,
            0x40,
            0x00,
            0xB4,
            0x02,
            0x80,
            0x01,
            0x68,
            0xAA,
        ];
        let d = parse_descriptor(&payload).unwrap();
        assert_eq!(d.picture_id, Some(300));
        assert!(!d.inter_picture && d.begins_frame && !d.ends_frame && !d.flexible);
        assert_eq!(d.layer, Some(LayerIndices::default()));
        assert_eq!(d.tl0_pic_idx, Some(7));
        let ss = d.scalability.clone().unwrap();
        assert_eq!(ss.spatial_layers, 2);
        assert_eq!(ss.sizes, [(320, 180), (640, 360)]);
        assert_eq!(d.header_len, 14);
    }

    #[test]
    fn descriptor_in_flexible_mode_with_reference_differences() {
        // I (7-bit), P, L, F, E: T2 U S1 D, P_DIFFs 1 and 3.
        let payload = [0xF4, 0x05, (2 << 5) | 0x10 | (1 << 1) | 1, 0x03, 0x06, 0xAA];
        let d = parse_descriptor(&payload).unwrap();
        assert_eq!(d.picture_id, Some(5));
        assert!(d.inter_picture && d.flexible && d.ends_frame && !d.begins_frame);
        let layer = d.layer.unwrap();
        assert_eq!(
            (layer.temporal, layer.switching_up, layer.spatial),
            (2, true, 1)
        );
        assert!(layer.inter_layer_dependency);
        assert_eq!(d.tl0_pic_idx, None);
        assert_eq!(d.p_diffs, [1, 3]);
        assert_eq!(d.header_len, 5);
    }

    #[test]
    fn descriptor_with_a_picture_group_description() {
        // V with G: N_S 1, no sizes, two groups (with two P_DIFFs, then one).
        let payload = [0x0E, 0x08, 2, 0x08, 1, 2, 0x24, 9, 0xAA];
        let d = parse_descriptor(&payload).unwrap();
        assert_eq!(d.scalability.unwrap().spatial_layers, 1);
        assert_eq!(d.header_len, 8);
    }

    #[test]
    fn bad_descriptors() {
        assert_eq!(parse_descriptor(&[]), None);
        assert_eq!(parse_descriptor(&[0x88]), None, "no frame data");
        assert_eq!(
            parse_descriptor(&[0x88, 0x80]),
            None,
            "truncated picture id"
        );
        assert_eq!(
            parse_descriptor(&[0x50, 1, 1, 1, 1, 0xAA]),
            None,
            "four P_DIFFs"
        );
    }

    #[test]
    fn frame_size_of_a_keyframe() {
        // Profile 0 keyframe, shown: 10 0 0 0 0 1 0, sync code, color space 2 (BT.709),
        // range 0, then 640-1 and 360-1.
        let mut bits = String::from("10000010");
        bits += "010010011000001101000010";
        bits += "0100";
        bits += &format!("{:016b}{:016b}", 639, 359);
        assert_eq!(frame_size(&pack(&bits)), Some((640, 360)));
        // The same as an inter frame that takes its size from a reference.
        let mut inter = String::from("10000110");
        inter += "00"; // reset_frame_context
        inter += "00000001";
        inter += "000000000000";
        inter += "1";
        assert_eq!(frame_size(&pack(&inter)), None);
        // An inter frame that states its size (no reference found).
        let mut stated = inter[..inter.len() - 1].to_string();
        stated += "000";
        stated += &format!("{:016b}{:016b}", 1279, 719);
        assert_eq!(frame_size(&pack(&stated)), Some((1280, 720)));
        assert_eq!(frame_size(&[0x82]), None);
    }

    fn pack(bits: &str) -> Vec<u8> {
        let mut bits = bits.to_string();
        while bits.len() & 7 != 0 {
            bits.push('0');
        }
        (0..bits.len() / 8)
            .map(|i| u8::from_str_radix(&bits[i * 8..i * 8 + 8], 2).unwrap())
            .collect()
    }

    #[test]
    fn superframes_round_trip_and_flatten() {
        let a = vec![0x82; 10];
        let b = vec![0x83; 300];
        assert_eq!(superframe(&[&a]).unwrap(), a);
        let sf = superframe(&[&a, &b]).unwrap();
        assert_eq!(sf.len(), 310 + 2 + 2 * 2);
        assert_eq!(sf[310], 0xC0 | (1 << 3) | 1);
        assert_eq!(split_superframe(&sf), [&a[..], &b[..]]);
        let c = vec![0x84; 5];
        let nested = superframe(&[&sf, &c]).unwrap();
        assert_eq!(split_superframe(&nested), [&a[..], &b[..], &c[..]]);
        let many: Vec<&[u8]> = (0..9).map(|_| &a[..]).collect();
        assert_eq!(superframe(&many), None);
        // Not an index: a buffer that only ends like one.
        let fake = [0x82, 0xC0];
        assert_eq!(split_superframe(&fake), [&fake[..]]);
    }
}
