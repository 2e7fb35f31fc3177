//! One recorded track from packets to what its file gets, sans-IO: reorder, timeline, frame
//! assembly, then the decisions of a recording: the file starts at the first frame (video: the
//! first keyframe that says its size; H.264: with its SPS and PPS), its timestamps start at 0
//! there, and after a lost frame video waits for the next keyframe, asking for one
//! ([`TrackEvent::RequestKeyframe`], again each [`KEYFRAME_REQUEST_INTERVAL`] of waiting).

use std::time::{Duration, Instant};

use crate::depacketize::{Assembled, Frame, FrameAssembler, RtpPacket};
use crate::manifest::{Kind, RecCodec};
use crate::reorder::{ReorderBuffer, Reordered};
use crate::timeline::Timeline;
use crate::webm::TrackInfo;
use crate::{h264, opus};

/// A video track still waiting for a keyframe asks again this often (by packet arrivals).
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);

/// What a track's file gets.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackEvent {
    /// The first frame is here: create the file with this header. `start_ms` is the frame's
    /// time on the recording's clock.
    Start {
        /// The track header.
        info: TrackInfo,
        /// The first frame's time (ms after the recording's start).
        start_ms: u64,
    },
    /// A frame at `ts` ms of the file.
    Frame {
        /// ms since the file's first frame.
        ts: u64,
        /// Whether decoding can start here.
        keyframe: bool,
        /// The block's data.
        data: Vec<u8>,
    },
    /// Video needs a keyframe (the media server should send a PLI).
    RequestKeyframe,
}

/// One track's pipeline.
#[derive(Debug)]
pub struct TrackPipeline {
    codec: RecCodec,
    reorder: ReorderBuffer<RtpPacket>,
    assembler: FrameAssembler,
    timeline: Timeline,
    /// The newest arrival: the pipeline's clock.
    now: Option<Instant>,
    /// The file's first frame's time.
    start_ms: Option<u64>,
    awaiting_keyframe: bool,
    last_request: Option<Instant>,
    assembled: Vec<Assembled>,
    frames_lost: u64,
}

impl TrackPipeline {
    /// A pipeline for a track of `codec` on a recording that started at `origin`.
    pub fn new(codec: RecCodec, origin: Instant) -> TrackPipeline {
        let clock_rate = match codec.kind() {
            Kind::Audio => 48_000,
            Kind::Video => 90_000,
        };
        TrackPipeline {
            codec,
            reorder: ReorderBuffer::default(),
            assembler: FrameAssembler::new(codec),
            timeline: Timeline::new(clock_rate, origin),
            now: None,
            start_ms: None,
            awaiting_keyframe: codec.kind() == Kind::Video,
            last_request: None,
            assembled: Vec::new(),
            frames_lost: 0,
        }
    }

    /// Takes a packet; appends what it completed.
    pub fn push(&mut self, packet: RtpPacket, out: &mut Vec<TrackEvent>) {
        let now = self
            .now
            .map_or(packet.arrival, |now| now.max(packet.arrival));
        self.now = Some(now);
        self.reorder.push(packet.seq, packet.arrival, packet);
        self.drain(now, out);
    }

    /// The track ended: gives up on missing packets and puts out what is left.
    pub fn finish(&mut self, out: &mut Vec<TrackEvent>) {
        let Some(now) = self.now else { return };
        self.reorder.flush();
        self.drain(now, out);
        self.assembler.finish(&mut self.assembled);
        self.take_assembled(now, out);
    }

    /// Frames lost so far (not written).
    pub fn frames_lost(&self) -> u64 {
        self.frames_lost
    }

    /// Packets that came after the reorder buffer had given up on them, or twice.
    pub fn late_packets(&self) -> u64 {
        self.reorder.late()
    }

    /// How many times the track's clock was re-anchored to arrival times.
    pub fn reanchored(&self) -> u64 {
        self.timeline.reanchored()
    }

    fn drain(&mut self, now: Instant, out: &mut Vec<TrackEvent>) {
        while let Some(next) = self.reorder.pop(now) {
            match next {
                Reordered::Packet(packet) => {
                    let time_ms = self.timeline.map(packet.rtp_ts, packet.arrival);
                    self.assembler.push(packet, time_ms, &mut self.assembled);
                }
                Reordered::Gap => self.assembler.gap(&mut self.assembled),
            }
            self.take_assembled(now, out);
        }
    }

    fn take_assembled(&mut self, now: Instant, out: &mut Vec<TrackEvent>) {
        for assembled in std::mem::take(&mut self.assembled) {
            match assembled {
                Assembled::Lost => {
                    self.frames_lost += 1;
                    if self.codec.kind() == Kind::Video {
                        self.awaiting_keyframe = true;
                        self.request_keyframe(now, out);
                    }
                }
                Assembled::Frame(frame) => self.on_frame(frame, now, out),
            }
        }
    }

    fn on_frame(&mut self, frame: Frame, now: Instant, out: &mut Vec<TrackEvent>) {
        if self.awaiting_keyframe && !frame.keyframe {
            self.request_keyframe(now, out);
            return;
        }
        let start_ms = match self.start_ms {
            Some(start_ms) => start_ms,
            None => {
                let Some(info) = self.track_info(&frame) else {
                    self.request_keyframe(now, out);
                    return;
                };
                out.push(TrackEvent::Start {
                    info,
                    start_ms: frame.time_ms,
                });
                *self.start_ms.insert(frame.time_ms)
            }
        };
        if frame.keyframe {
            self.awaiting_keyframe = false;
            self.last_request = None;
        }
        out.push(TrackEvent::Frame {
            ts: frame.time_ms.saturating_sub(start_ms),
            keyframe: frame.keyframe,
            data: frame.data,
        });
    }

    fn request_keyframe(&mut self, now: Instant, out: &mut Vec<TrackEvent>) {
        let due = self
            .last_request
            .is_none_or(|last| now.saturating_duration_since(last) >= KEYFRAME_REQUEST_INTERVAL);
        if due {
            self.last_request = Some(now);
            out.push(TrackEvent::RequestKeyframe);
        }
    }

    /// The header for a file starting at `frame`, if it can start there.
    fn track_info(&self, frame: &Frame) -> Option<TrackInfo> {
        let mut info = TrackInfo {
            codec: self.codec,
            width: 0,
            height: 0,
            channels: 0,
            codec_private: Vec::new(),
            pre_skip: 0,
        };
        match self.codec {
            RecCodec::Opus => {
                info.channels = opus::CHANNELS;
                info.pre_skip = opus::PRE_SKIP;
                info.codec_private = opus::opus_head(opus::CHANNELS, opus::PRE_SKIP);
            }
            RecCodec::Vp8 | RecCodec::Vp9 => (info.width, info.height) = frame.size?,
            RecCodec::H264 => {
                (info.width, info.height) = frame.size?;
                let find = |t| h264::nal_units(&frame.data).find(|n| h264::nal_type(n) == t);
                info.codec_private = h264::avcc(find(h264::NAL_SPS)?, find(h264::NAL_PPS)?)?;
            }
        }
        Some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::unversioned::{Packetizer, Vp8Packetizer};

    fn vp8_frame(key: bool, len: usize) -> Vec<u8> {
        let mut f = if key {
            vec![0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0x68, 0x01]
        } else {
            vec![0x11, 0x02, 0x00]
        };
        f.resize(len, 0x55);
        f
    }

    /// VP8 packets of 30 fps frames (keyframes where `keys` says), arriving on time.
    fn vp8_stream(t0: Instant, keys: &[bool]) -> Vec<Vec<RtpPacket>> {
        let mut packetizer = Vp8Packetizer::default();
        let mut seq = 1_000;
        keys.iter()
            .enumerate()
            .map(|(i, &key)| {
                let payloads = packetizer.packetize(1_200, &vp8_frame(key, 2_000)).unwrap();
                let n = payloads.len();
                payloads
                    .into_iter()
                    .enumerate()
                    .map(|(j, payload)| {
                        seq += 1;
                        RtpPacket {
                            seq,
                            arrival: t0 + Duration::from_millis(500 + i as u64 * 100 / 3),
                            rtp_ts: 7_000 + 3_000 * i as u32,
                            marker: j == n - 1,
                            payload,
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn summary(events: &[TrackEvent]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                TrackEvent::Start { info, start_ms } => {
                    format!("start {}x{} at {start_ms}", info.width, info.height)
                }
                TrackEvent::Frame { ts, keyframe, .. } => {
                    format!("{}{ts}", if *keyframe { "key " } else { "" })
                }
                TrackEvent::RequestKeyframe => "pli".to_string(),
            })
            .collect()
    }

    #[test]
    fn video_starts_at_its_first_keyframe_and_asks_for_one_before() {
        let t0 = Instant::now();
        let mut track = TrackPipeline::new(RecCodec::Vp8, t0);
        let mut out = Vec::new();
        for frame in vp8_stream(t0, &[false, false, true, false]) {
            for p in frame {
                track.push(p, &mut out);
            }
        }
        track.finish(&mut out);
        // The first interframe asks (once: the second is within the interval). Times are
        // whole ms of the recording's clock: 566.7 and 600.
        assert_eq!(
            summary(&out),
            ["pli", "start 640x360 at 566", "key 0", "34"]
        );
    }

    #[test]
    fn a_lost_packet_makes_video_wait_for_the_next_keyframe() {
        let t0 = Instant::now();
        let mut track = TrackPipeline::new(RecCodec::Vp8, t0);
        let mut out = Vec::new();
        let keys: Vec<bool> = (0..70).map(|i| i == 0 || i == 60).collect();
        for (i, frame) in vp8_stream(t0, &keys).into_iter().enumerate() {
            for (j, p) in frame.into_iter().enumerate() {
                if i == 3 && j == 0 {
                    continue; // lost
                }
                track.push(p, &mut out);
            }
        }
        track.finish(&mut out);
        let s = summary(&out);
        assert_eq!(s[..5], ["start 640x360 at 500", "key 0", "33", "66", "pli"]);
        // Nothing until the keyframe at frame 60 (2 s); one more request after a second.
        let pli = s.iter().filter(|e| *e == "pli").count();
        assert_eq!(pli, 2, "{s:?}");
        let after = s
            .iter()
            .position(|e| e == "key 2000")
            .expect("the next keyframe");
        assert_eq!(s[after + 1], "2033");
        assert_eq!(s.len(), after + 10);
        assert_eq!(track.frames_lost(), 2, "the gap, and the frame it broke");
    }

    #[test]
    fn audio_keeps_pauses_as_gaps_from_its_first_packet() {
        let t0 = Instant::now();
        let mut track = TrackPipeline::new(RecCodec::Opus, t0);
        let mut out = Vec::new();
        let packet = |seq: u64, ms: u64| RtpPacket {
            seq,
            arrival: t0 + Duration::from_millis(ms),
            rtp_ts: (ms * 48) as u32,
            marker: false,
            payload: vec![0xFC, seq as u8],
        };
        for (seq, ms) in [(1, 1_000), (2, 1_020), (3, 3_040), (4, 3_060)] {
            track.push(packet(seq, ms), &mut out);
        }
        assert_eq!(
            summary(&out),
            [
                "start 0x0 at 1000",
                "key 0",
                "key 20",
                "key 2040",
                "key 2060"
            ]
        );
        match &out[0] {
            TrackEvent::Start { info, .. } => assert_eq!(info.codec_private.len(), 19),
            e => panic!("{e:?}"),
        }
    }
}
