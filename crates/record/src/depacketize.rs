//! Frames from RTP packets in sequence order, sans-IO.
//!
//! Opus is one packet, one frame. VP8 and H.264 frames are the packets from a frame's first
//! (VP8: S bit and partition 0; H.264: a parameter set or a picture's first slice) to its
//! marker, all of one RTP timestamp, unpacked by str0m's depacketizers. VP9 pictures are
//! assembled here from their payload descriptors, layer frame by layer frame (B to E bits),
//! and the picture ends at its marker. A frame with a packet missing (a [`gap`] inside it, no
//! beginning, a new timestamp before its end) is not put out: [`Assembled::Lost`] is.
//!
//! VP9 with spatial layers (SVC) records one spatial layer: the highest that arrived complete
//! in the last keyframe picture (chosen again at each keyframe). Its frames are put out alone
//! when they do not use inter-layer prediction (D bit clear, as in Chrome's "KEY" modes
//! between keyframes), else together with the layers they depend on, as one superframe; a
//! picture without that layer is lost.
//!
//! [`gap`]: FrameAssembler::gap

use std::time::Instant;

use str0m::format::CodecExtra;
use str0m::unversioned::{Depacketizer, H264Depacketizer, Vp8Depacketizer};

use crate::manifest::RecCodec;
use crate::{h264, vp8, vp9};

/// Largest frame kept: a frame with more payload than this is dropped as lost.
pub const MAX_FRAME_BYTES: usize = 4 << 20;

/// An RTP packet of a recorded track, as the media server hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// The extended (64-bit, unwrapped) sequence number.
    pub seq: u64,
    /// When it was received.
    pub arrival: Instant,
    /// Its RTP timestamp.
    pub rtp_ts: u32,
    /// Its marker bit.
    pub marker: bool,
    /// Its payload (after the RTP header, extensions and padding).
    pub payload: Vec<u8>,
}

/// A frame rebuilt from packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Its time on the recording's clock (ms), the one its first packet was given.
    pub time_ms: u64,
    /// Whether decoding can start at it.
    pub keyframe: bool,
    /// The frame as it goes in a Matroska block (H.264: 4-byte length-prefixed NAL units).
    pub data: Vec<u8>,
    /// Video keyframes: the size, from the bitstream or VP9's scalability structure.
    pub size: Option<(u32, u32)>,
}

/// What the assembler puts out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembled {
    /// A complete frame.
    Frame(Frame),
    /// A frame (or part of one) was lost.
    Lost,
}

/// One track's frame assembly.
#[derive(Debug)]
pub struct FrameAssembler {
    codec: RecCodec,
    partial: Option<Partial>,
    picture: Option<Vp9Picture>,
    /// VP9: the spatial layer recorded, chosen at each keyframe.
    vp9_target: Option<u8>,
    /// VP9: each spatial layer's size from the last scalability structure.
    vp9_sizes: Vec<(u16, u16)>,
}

/// VP8 or H.264 packets of one frame so far.
#[derive(Debug)]
struct Partial {
    rtp_ts: u32,
    time_ms: u64,
    payloads: Vec<Vec<u8>>,
    bytes: usize,
    broken: bool,
}

/// VP9 layer frames of one picture so far.
#[derive(Debug)]
struct Vp9Picture {
    rtp_ts: u32,
    time_ms: u64,
    layers: Vec<Vp9LayerFrame>,
    bytes: usize,
    broken: bool,
}

#[derive(Debug)]
struct Vp9LayerFrame {
    spatial: u8,
    intra: bool,
    inter_layer_dependency: bool,
    data: Vec<u8>,
    complete: bool,
    broken: bool,
}

impl Vp9LayerFrame {
    fn usable(&self) -> bool {
        self.complete && !self.broken
    }
}

impl FrameAssembler {
    /// An assembler for a codec.
    pub fn new(codec: RecCodec) -> FrameAssembler {
        FrameAssembler {
            codec,
            partial: None,
            picture: None,
            vp9_target: None,
            vp9_sizes: Vec::new(),
        }
    }

    /// The next packet in sequence order, given the time the timeline gave it.
    pub fn push(&mut self, packet: RtpPacket, time_ms: u64, out: &mut Vec<Assembled>) {
        if packet.payload.is_empty() {
            return; // padding: nothing of a frame
        }
        match self.codec {
            RecCodec::Opus => out.push(Assembled::Frame(Frame {
                time_ms,
                keyframe: true,
                data: packet.payload,
                size: None,
            })),
            RecCodec::Vp8 | RecCodec::H264 => self.push_partial(packet, time_ms, out),
            RecCodec::Vp9 => self.push_vp9(packet, time_ms, out),
        }
    }

    /// Packets were lost before the next one.
    pub fn gap(&mut self, out: &mut Vec<Assembled>) {
        if let Some(partial) = &mut self.partial {
            partial.broken = true;
        }
        if let Some(picture) = &mut self.picture {
            picture.broken = true;
        }
        out.push(Assembled::Lost);
    }

    /// The track ended: an unfinished frame is lost (its marker never came).
    pub fn finish(&mut self, out: &mut Vec<Assembled>) {
        if self.partial.take().is_some() {
            out.push(Assembled::Lost);
        }
        if let Some(picture) = self.picture.take() {
            // Without its marker a picture may still be whole: its layer frames say.
            self.finish_picture(picture, out);
        }
    }

    fn push_partial(&mut self, packet: RtpPacket, time_ms: u64, out: &mut Vec<Assembled>) {
        if self
            .partial
            .as_ref()
            .is_some_and(|p| p.rtp_ts != packet.rtp_ts)
        {
            // A new timestamp before the last frame's marker: its end was lost.
            self.partial = None;
            out.push(Assembled::Lost);
        }
        let begins = match self.codec {
            RecCodec::Vp8 => packet.payload[0] & 0x17 == 0x10, // S bit, partition 0
            _ => h264::starts_access_unit(&packet.payload),
        };
        let partial = self.partial.get_or_insert_with(|| Partial {
            rtp_ts: packet.rtp_ts,
            time_ms,
            payloads: Vec::new(),
            bytes: 0,
            broken: !begins,
        });
        partial.bytes += packet.payload.len();
        if partial.bytes > MAX_FRAME_BYTES {
            partial.broken = true;
            partial.payloads = Vec::new();
        }
        if !partial.broken {
            partial.payloads.push(packet.payload);
        }
        if packet.marker {
            let partial = self.partial.take().expect("a frame being assembled");
            let frame = if partial.broken {
                None
            } else {
                self.depacketize(&partial)
            };
            out.push(frame.map_or(Assembled::Lost, Assembled::Frame));
        }
    }

    fn depacketize(&self, partial: &Partial) -> Option<Frame> {
        let mut data = Vec::with_capacity(partial.bytes + 4 * partial.payloads.len());
        let mut extra = CodecExtra::None;
        let (keyframe, size) = match self.codec {
            RecCodec::Vp8 => {
                let mut depacketizer = Vp8Depacketizer::default();
                for payload in &partial.payloads {
                    depacketizer
                        .depacketize(payload, &mut data, &mut extra)
                        .ok()?;
                }
                let keyframe = matches!(extra, CodecExtra::Vp8(e) if e.is_keyframe);
                (keyframe, vp8::keyframe_size(&data).filter(|_| keyframe))
            }
            _ => {
                let mut depacketizer = H264Depacketizer::default();
                depacketizer.is_avc = true;
                for payload in &partial.payloads {
                    depacketizer
                        .depacketize(payload, &mut data, &mut extra)
                        .ok()?;
                }
                let mut keyframe = false;
                let mut size = None;
                for nal in h264::nal_units(&data) {
                    match h264::nal_type(nal) {
                        h264::NAL_IDR => keyframe = true,
                        h264::NAL_SPS => {
                            keyframe = true;
                            size = size.or_else(|| h264::sps_size(nal));
                        }
                        _ => {}
                    }
                }
                (keyframe, size)
            }
        };
        (!data.is_empty()).then_some(Frame {
            time_ms: partial.time_ms,
            keyframe,
            data,
            size,
        })
    }

    fn push_vp9(&mut self, packet: RtpPacket, time_ms: u64, out: &mut Vec<Assembled>) {
        if let Some(picture) = self.picture.take_if(|p| p.rtp_ts != packet.rtp_ts) {
            // A new picture before the last one's marker: the marker packet was lost, or the
            // sender left it off; its layer frames tell whether it is whole.
            self.finish_picture(picture, out);
        }
        let picture = self.picture.get_or_insert_with(|| Vp9Picture {
            rtp_ts: packet.rtp_ts,
            time_ms,
            layers: Vec::new(),
            bytes: 0,
            broken: false,
        });
        match vp9::parse_descriptor(&packet.payload) {
            None => picture.broken = true,
            Some(d) => {
                if let Some(ss) = &d.scalability {
                    if !ss.sizes.is_empty() {
                        self.vp9_sizes.clone_from(&ss.sizes);
                    }
                }
                let spatial = d.spatial();
                let continues = picture
                    .layers
                    .last()
                    .is_some_and(|l| l.spatial == spatial && !l.complete);
                if d.begins_frame || !continues {
                    let duplicate = picture.layers.iter().any(|l| l.spatial == spatial);
                    picture.layers.push(Vp9LayerFrame {
                        spatial,
                        intra: !d.inter_picture,
                        inter_layer_dependency: d.layer.is_some_and(|l| l.inter_layer_dependency),
                        data: Vec::new(),
                        complete: false,
                        broken: !d.begins_frame || duplicate,
                    });
                }
                let data = &packet.payload[d.header_len..];
                picture.bytes += data.len();
                let too_big = picture.bytes > MAX_FRAME_BYTES
                    || picture.layers.len() > vp9::MAX_SPATIAL_LAYERS;
                let layer = picture.layers.last_mut().expect("a layer frame");
                if too_big {
                    picture.broken = true;
                } else if !layer.broken {
                    layer.data.extend_from_slice(data);
                }
                layer.complete |= d.ends_frame;
            }
        }
        if packet.marker {
            let picture = self.picture.take().expect("a picture being assembled");
            self.finish_picture(picture, out);
        }
    }

    fn finish_picture(&mut self, picture: Vp9Picture, out: &mut Vec<Assembled>) {
        let frame = if picture.broken {
            None
        } else {
            self.select_layers(picture)
        };
        out.push(frame.map_or(Assembled::Lost, Assembled::Frame));
    }

    /// The frame to record of a whole picture (see the module's description).
    fn select_layers(&mut self, picture: Vp9Picture) -> Option<Frame> {
        let layers = &picture.layers;
        let keyframe = layers
            .first()
            .is_some_and(|l| l.spatial == 0 && l.intra && l.usable());
        let chain: Vec<&Vp9LayerFrame> = if keyframe {
            // The longest run of whole layers S0, S1, ...: the highest decodable.
            let run = layers
                .iter()
                .enumerate()
                .take_while(|(i, l)| usize::from(l.spatial) == *i && l.usable())
                .count();
            self.vp9_target = Some(layers[run - 1].spatial);
            layers[..run].iter().collect()
        } else {
            let target = self.vp9_target?;
            let mut at = layers.iter().position(|l| l.spatial == target)?;
            let mut chain = vec![&layers[at]];
            while layers[at].inter_layer_dependency {
                at = at.checked_sub(1)?;
                if layers[at].spatial + 1 != chain[0].spatial {
                    return None;
                }
                chain.insert(0, &layers[at]);
            }
            chain
        };
        if chain.iter().any(|l| !l.usable()) {
            return None;
        }
        let frames: Vec<&[u8]> = chain.iter().map(|l| &l.data[..]).collect();
        let data = vp9::superframe(&frames)?;
        let size = keyframe
            .then(|| {
                let top = usize::from(chain.last()?.spatial);
                let from_ss = self.vp9_sizes.get(top).map(|&(w, h)| (w.into(), h.into()));
                from_ss.or_else(|| {
                    frames
                        .iter()
                        .rev()
                        .flat_map(|f| vp9::split_superframe(f).into_iter().rev())
                        .find_map(vp9::frame_size)
                })
            })
            .flatten();
        Some(Frame {
            time_ms: picture.time_ms,
            keyframe,
            data,
            size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::unversioned::{H264Packetizer, Packetizer, Vp8Packetizer};

    const MTU: usize = 1_200;

    /// Packets of frames, numbered from `seq`, one timestamp per frame.
    fn packetize(packetizer: &mut dyn Packetizer, frames: &[Vec<u8>], seq: u64) -> Vec<RtpPacket> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let payloads = packetizer.packetize(MTU, frame).unwrap();
            let n = payloads.len();
            for (j, payload) in payloads.into_iter().enumerate() {
                out.push(RtpPacket {
                    seq: seq + out.len() as u64,
                    arrival: t0,
                    rtp_ts: 3_000 * i as u32,
                    marker: j == n - 1,
                    payload,
                });
            }
        }
        out
    }

    fn assemble(codec: RecCodec, packets: Vec<RtpPacket>) -> Vec<Assembled> {
        let mut asm = FrameAssembler::new(codec);
        let mut out = Vec::new();
        for p in packets {
            let ms = u64::from(p.rtp_ts) / 90;
            asm.push(p, ms, &mut out);
        }
        asm.finish(&mut out);
        out
    }

    fn frames(out: &[Assembled]) -> Vec<&Frame> {
        out.iter()
            .filter_map(|a| match a {
                Assembled::Frame(f) => Some(f),
                Assembled::Lost => None,
            })
            .collect()
    }

    /// A VP8 keyframe of a size, `len` bytes long.
    fn vp8_keyframe(width: u16, height: u16, len: usize) -> Vec<u8> {
        let mut f = vec![0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A];
        f.extend_from_slice(&width.to_le_bytes());
        f.extend_from_slice(&height.to_le_bytes());
        f.extend((0..len - 10).map(|i| i as u8));
        f
    }

    fn vp8_interframe(len: usize, seed: u8) -> Vec<u8> {
        let mut f = vec![0x11, 0x02, 0x00];
        f.extend((0..len - 3).map(|i| (i as u8).wrapping_mul(seed)));
        f
    }

    #[test]
    fn opus_is_one_packet_one_frame() {
        let packets = vec![
            RtpPacket {
                seq: 1,
                arrival: Instant::now(),
                rtp_ts: 0,
                marker: true,
                payload: vec![0xFC, 1, 2],
            },
            RtpPacket {
                seq: 2,
                arrival: Instant::now(),
                rtp_ts: 960,
                marker: false,
                payload: vec![0xFC, 3],
            },
        ];
        let out = assemble(RecCodec::Opus, packets);
        let f = frames(&out);
        assert_eq!(f.len(), 2);
        assert_eq!(f[1].data, [0xFC, 3]);
        assert!(f.iter().all(|f| f.keyframe));
    }

    #[test]
    fn vp8_frames_from_str0m_packets() {
        let frames_in = vec![
            vp8_keyframe(640, 360, 5_000),
            vp8_interframe(700, 3),
            vp8_interframe(2_500, 5),
        ];
        let packets = packetize(&mut Vp8Packetizer::default(), &frames_in, 100);
        assert_eq!(packets.len(), 5 + 1 + 3);
        let out = assemble(RecCodec::Vp8, packets);
        let f = frames(&out);
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(
            f.iter().map(|f| &f.data).collect::<Vec<_>>(),
            [&frames_in[0], &frames_in[1], &frames_in[2]]
        );
        assert_eq!((f[0].keyframe, f[0].size), (true, Some((640, 360))));
        assert_eq!((f[1].keyframe, f[1].size), (false, None));
        assert_eq!(f[2].time_ms, 66);
    }

    #[test]
    fn vp8_frame_with_a_lost_packet_is_not_put_out() {
        let frames_in = vec![
            vp8_keyframe(320, 240, 3_000),
            vp8_interframe(3_000, 7),
            vp8_interframe(500, 9),
        ];
        let mut packets = packetize(&mut Vp8Packetizer::default(), &frames_in, 0);
        // The second frame's middle packet is lost.
        packets.remove(4);
        let mut asm = FrameAssembler::new(RecCodec::Vp8);
        let mut out = Vec::new();
        for (i, p) in packets.into_iter().enumerate() {
            if i == 4 {
                asm.gap(&mut out);
            }
            asm.push(p, 0, &mut out);
        }
        let kinds: Vec<bool> = out
            .iter()
            .map(|a| matches!(a, Assembled::Frame(_)))
            .collect();
        // Keyframe, the gap's Lost, the broken frame's Lost, the last frame.
        assert_eq!(kinds, [true, false, false, true]);
        assert_eq!(frames(&out)[1].data, frames_in[2]);
    }

    #[test]
    fn vp8_starting_mid_frame_drops_that_frame() {
        let frames_in = vec![vp8_interframe(3_000, 7), vp8_interframe(500, 9)];
        let mut packets = packetize(&mut Vp8Packetizer::default(), &frames_in, 0);
        packets.remove(0);
        let out = assemble(RecCodec::Vp8, packets);
        assert_eq!(out[0], Assembled::Lost);
        assert_eq!(frames(&out)[0].data, frames_in[1]);
    }

    #[test]
    fn vp8_frame_without_its_marker_is_lost_when_the_next_begins() {
        let frames_in = vec![vp8_interframe(2_000, 7), vp8_interframe(500, 9)];
        let mut packets = packetize(&mut Vp8Packetizer::default(), &frames_in, 0);
        packets.remove(1); // the end and marker of the first frame
        let out = assemble(RecCodec::Vp8, packets);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], Assembled::Lost);
        assert_eq!(frames(&out)[0].data, frames_in[1]);
    }

    /// An Annex B access unit of NAL units.
    fn annex_b(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [0, 0, 0, 1].iter().copied().chain(n.iter().copied()))
            .collect()
    }

    fn avc(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| {
                (n.len() as u32)
                    .to_be_bytes()
                    .into_iter()
                    .chain(n.iter().copied())
            })
            .collect()
    }

    /// A baseline 640x360 SPS (see h264's tests), a PPS, an IDR slice and a P slice.
    fn h264_nals() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let sps = vec![0x67, 0x42, 0xE0, 0x1F, 0xE5, 0x40, 0x50, 0x17, 0xFC, 0xA8];
        let pps = vec![0x68, 0xCE, 0x3C, 0x80];
        let mut idr = vec![0x65, 0x88];
        idr.extend((0..4_000).map(|i| (i % 251) as u8 + 1));
        let mut p = vec![0x41, 0x9A];
        p.extend((0..300).map(|i| (i % 13) as u8 + 1));
        (sps, pps, idr, p)
    }

    #[test]
    fn h264_access_units_become_avc_frames() {
        let (sps, pps, idr, p) = h264_nals();
        assert_eq!(h264::sps_size(&sps), Some((640, 360)), "test SPS");
        let frames_in = vec![
            annex_b(&[sps.clone(), pps.clone(), idr.clone()]),
            annex_b(std::slice::from_ref(&p)),
        ];
        let packets = packetize(&mut H264Packetizer::default(), &frames_in, 7);
        let out = assemble(RecCodec::H264, packets);
        let f = frames(&out);
        assert_eq!(f.len(), 2, "{out:?}");
        assert_eq!(f[0].data, avc(&[sps, pps, idr]));
        assert_eq!((f[0].keyframe, f[0].size), (true, Some((640, 360))));
        assert_eq!(f[1].data, avc(&[p]));
        assert!(!f[1].keyframe);
    }

    #[test]
    fn h264_lost_first_fragment_loses_the_frame() {
        let (sps, pps, idr, p) = h264_nals();
        let frames_in = vec![annex_b(&[sps, pps, idr]), annex_b(std::slice::from_ref(&p))];
        let mut packets = packetize(&mut H264Packetizer::default(), &frames_in, 0);
        // STAP-A of SPS+PPS, then the IDR's FU-A: drop the STAP-A and the first FU-A.
        packets.drain(..2);
        let out = assemble(RecCodec::H264, packets);
        assert_eq!(out[0], Assembled::Lost);
        assert_eq!(frames(&out)[0].data, avc(&[p]));
    }

    /// Hand-made VP9 packets: a descriptor with a 15-bit picture ID and, for SVC, layer
    /// indices (non-flexible mode).
    struct Vp9Packet {
        picture: u16,
        spatial: Option<u8>,
        inter: bool,
        dependency: bool,
        begin: bool,
        end: bool,
        marker: bool,
        ss: Option<Vec<(u16, u16)>>,
        data: Vec<u8>,
    }

    impl Vp9Packet {
        fn payload(&self) -> Vec<u8> {
            let mut first = 0x80;
            if self.inter {
                first |= 0x40;
            }
            if self.spatial.is_some() {
                first |= 0x20;
            }
            if self.begin {
                first |= 0x08;
            }
            if self.end {
                first |= 0x04;
            }
            if self.ss.is_some() {
                first |= 0x02;
            }
            let mut p = vec![first, 0x80 | (self.picture >> 8) as u8, self.picture as u8];
            if let Some(s) = self.spatial {
                p.push((s << 1) | u8::from(self.dependency));
                p.push(0); // TL0PICIDX
            }
            if let Some(sizes) = &self.ss {
                p.push(((sizes.len() as u8 - 1) << 5) | 0x10);
                for (w, h) in sizes {
                    p.extend_from_slice(&w.to_be_bytes());
                    p.extend_from_slice(&h.to_be_bytes());
                }
            }
            p.extend_from_slice(&self.data);
            p
        }
    }

    fn vp9_packets(list: &[Vp9Packet]) -> Vec<RtpPacket> {
        list.iter()
            .enumerate()
            .map(|(i, p)| RtpPacket {
                seq: i as u64,
                arrival: Instant::now(),
                rtp_ts: 3_000 * u32::from(p.picture),
                marker: p.marker,
                payload: p.payload(),
            })
            .collect()
    }

    fn vp9(
        picture: u16,
        spatial: Option<u8>,
        inter: bool,
        begin: bool,
        end: bool,
        data: &[u8],
    ) -> Vp9Packet {
        Vp9Packet {
            picture,
            spatial,
            inter,
            dependency: false,
            begin,
            end,
            marker: end,
            ss: None,
            data: data.to_vec(),
        }
    }

    /// A VP9 profile 0 keyframe header of a size (then `tail`).
    fn vp9_keyframe(width: u16, height: u16, tail: &[u8]) -> Vec<u8> {
        let mut f = vec![0x82, 0x49, 0x83, 0x42, 0x40];
        let w = u32::from(width - 1);
        let h = u32::from(height - 1);
        // After the 4 colour bits (0100) of byte 4: 16 + 16 bits of size, shifted by 4.
        let bits = (u64::from(w) << 16 | u64::from(h)) << 4;
        f[4] |= (bits >> 32) as u8;
        f.extend_from_slice(&(bits as u32).to_be_bytes());
        f.extend_from_slice(tail);
        f
    }

    #[test]
    fn vp9_single_layer_pictures_from_hand_made_descriptors() {
        let key = vp9_keyframe(640, 360, &[1; 50]);
        assert_eq!(vp9::frame_size(&key), Some((640, 360)), "test keyframe");
        let packets = vp9_packets(&[
            vp9(0, None, false, true, false, &key[..30]),
            vp9(0, None, false, false, true, &key[30..]),
            vp9(1, None, true, true, true, &[0x86, 2, 2]),
            vp9(2, None, true, true, false, &[0x86, 3]),
            // picture 2's last packet lost: picture 3 begins.
            vp9(3, None, true, true, true, &[0x86, 4]),
        ]);
        let out = assemble(RecCodec::Vp9, packets);
        assert_eq!(out.len(), 4, "{out:?}");
        let f = frames(&out);
        assert_eq!(f[0].data, key);
        assert_eq!((f[0].keyframe, f[0].size), (true, Some((640, 360))));
        assert_eq!(f[1].data, [0x86, 2, 2]);
        assert!(!f[1].keyframe);
        assert_eq!(out[2], Assembled::Lost);
        assert_eq!(f[2].data, [0x86, 4]);
    }

    #[test]
    fn vp9_svc_records_the_highest_spatial_layer() {
        let s0 = vp9_keyframe(320, 180, &[0; 20]);
        let mut s1_key = Vp9Packet {
            dependency: true,
            ..vp9(0, Some(1), true, true, true, &[0x86, 0xA1])
        };
        s1_key.marker = true;
        let mut s0_key = vp9(0, Some(0), false, true, true, &s0);
        s0_key.marker = false;
        s0_key.ss = Some(vec![(320, 180), (640, 360)]);
        let mut s0_p1 = vp9(1, Some(0), true, true, true, &[0x86, 0xB0]);
        s0_p1.marker = false;
        let s1_p1 = vp9(1, Some(1), true, true, true, &[0x86, 0xB1]);
        // Picture 2 lacks its S1 frame: lost for the S1 recording.
        let s0_p2 = vp9(2, Some(0), true, true, true, &[0x86, 0xC0]);
        // Picture 3: S1 with inter-layer prediction needs S0 too.
        let mut s0_p3 = vp9(3, Some(0), true, true, true, &[0x86, 0xD0]);
        s0_p3.marker = false;
        let s1_p3 = Vp9Packet {
            dependency: true,
            ..vp9(3, Some(1), true, true, true, &[0x86, 0xD1])
        };
        let out = assemble(
            RecCodec::Vp9,
            vp9_packets(&[s0_key, s1_key, s0_p1, s1_p1, s0_p2, s0_p3, s1_p3]),
        );
        assert_eq!(out.len(), 4, "{out:?}");
        let f = frames(&out);
        assert!(f[0].keyframe);
        assert_eq!(
            f[0].size,
            Some((640, 360)),
            "the S1 size of the scalability structure"
        );
        assert_eq!(
            vp9::split_superframe(&f[0].data),
            [&s0[..], &[0x86, 0xA1][..]]
        );
        assert_eq!(f[1].data, [0x86, 0xB1]);
        assert_eq!(out[2], Assembled::Lost);
        assert_eq!(
            vp9::split_superframe(&f[2].data),
            [&[0x86, 0xD0][..], &[0x86, 0xD1][..]]
        );
    }

    #[test]
    fn vp9_keyframe_picture_with_a_broken_upper_layer_records_the_lower() {
        let s0 = vp9_keyframe(320, 180, &[0; 20]);
        let mut s0_key = vp9(0, Some(0), false, true, true, &s0);
        s0_key.marker = false;
        // S1 begins but never ends before the next picture.
        let mut s1_key = vp9(0, Some(1), true, true, false, &[0x86]);
        s1_key.marker = false;
        let s0_p1 = vp9(1, Some(0), true, true, true, &[0x86, 0xB0]);
        let out = assemble(RecCodec::Vp9, vp9_packets(&[s0_key, s1_key, s0_p1]));
        let f = frames(&out);
        assert_eq!(f.len(), 2, "{out:?}");
        assert_eq!((f[0].data.clone(), f[0].size), (s0, Some((320, 180))));
        assert_eq!(f[1].data, [0x86, 0xB0]);
    }

    #[test]
    fn oversized_frames_are_lost() {
        let big = vp8_interframe(MAX_FRAME_BYTES + 10, 3);
        let packets = packetize(&mut Vp8Packetizer::default(), &[big], 0);
        let out = assemble(RecCodec::Vp8, packets);
        assert_eq!(out, [Assembled::Lost]);
    }
}
