//! A sans-IO WebM/Matroska muxer for one track: the file's header, then whole clusters of known
//! size, each returned as bytes to write as soon as it is closed.
//!
//! The Segment has an unknown size and there are no Cues or SeekHead: a file cut anywhere is
//! valid up to its last complete cluster (the post-processing remuxes anyway). The one thing
//! written back at a clean finish is the Info's Duration, into an 11-byte Void the header keeps
//! for it ([`WebmMuxer::duration_patch`]).
//!
//! A cluster closes when a keyframe comes and it is at least [`CLUSTER_MIN`] long (every audio
//! frame counts as a keyframe: each Opus frame decodes on its own), when it reaches
//! [`CLUSTER_MAX`], when a block's relative timestamp would not fit an `i16`, or when its
//! bytes would pass [`CLUSTER_MAX_BYTES`].

use crate::ebml;
use crate::manifest::{Kind, RecCodec};

/// A keyframe closes a cluster at least this long (ms).
pub const CLUSTER_MIN: u64 = 1_000;
/// A cluster closes when its next frame is this far (ms) from its start, keyframe or not.
pub const CLUSTER_MAX: u64 = 5_000;
/// A cluster's bytes are capped: a frame that would pass this closes it first.
pub const CLUSTER_MAX_BYTES: usize = 8 << 20;

const EBML: u32 = 0x1A45_DFA3;
const EBML_VERSION: u32 = 0x4286;
const EBML_READ_VERSION: u32 = 0x42F7;
const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
const DOC_TYPE: u32 = 0x4282;
const DOC_TYPE_VERSION: u32 = 0x4287;
const DOC_TYPE_READ_VERSION: u32 = 0x4285;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
const MUXING_APP: u32 = 0x4D80;
const WRITING_APP: u32 = 0x5741;
const DURATION: u32 = 0x4489;
const TRACKS: u32 = 0x1654_AE6B;
const TRACK_ENTRY: u32 = 0xAE;
const TRACK_NUMBER: u32 = 0xD7;
const TRACK_UID: u32 = 0x73C5;
const TRACK_TYPE: u32 = 0x83;
const FLAG_LACING: u32 = 0x9C;
const CODEC_ID: u32 = 0x86;
const CODEC_PRIVATE: u32 = 0x63A2;
const CODEC_DELAY: u32 = 0x56AA;
const SEEK_PRE_ROLL: u32 = 0x56BB;
const VIDEO: u32 = 0xE0;
const PIXEL_WIDTH: u32 = 0xB0;
const PIXEL_HEIGHT: u32 = 0xBA;
const AUDIO: u32 = 0xE1;
const SAMPLING_FREQUENCY: u32 = 0xB5;
const CHANNELS: u32 = 0x9F;
const CLUSTER: u32 = 0x1F43_B675;
const CLUSTER_TIMESTAMP: u32 = 0xE7;
const SIMPLE_BLOCK: u32 = 0xA3;

/// The Duration element: 2-byte ID, 1-byte size, 8-byte float.
const DURATION_LEN: usize = 11;
/// Opus decoders should decode this much (ns) before a seek point (WebM's recommendation).
const OPUS_SEEK_PRE_ROLL_NS: u64 = 80_000_000;

/// What the track header says.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    /// The codec (Matroska for H.264, WebM otherwise).
    pub codec: RecCodec,
    /// Video: the first keyframe's size.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// Opus: its channel count (the OpusHead's).
    pub channels: u8,
    /// Opus: the OpusHead; H.264: the avcC; VP8, VP9: empty.
    pub codec_private: Vec<u8>,
    /// Opus: the pre-skip of the OpusHead, in 48 kHz samples (CodecDelay in ns).
    pub pre_skip: u16,
}

/// A closed cluster, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The whole Cluster element.
    pub bytes: Vec<u8>,
    /// How many frames (blocks) it holds.
    pub frames: u64,
}

/// One track's muxer: [`header`](Self::header) once, then [`push`](Self::push) frames in
/// timestamp order, then [`finish`](Self::finish).
#[derive(Debug)]
pub struct WebmMuxer {
    info: TrackInfo,
    /// Where the Duration's Void is in the file (offset from the file's start).
    duration_offset: Option<u64>,
    cluster: Option<OpenCluster>,
    last_ts: Option<u64>,
    /// The last step between frames, the duration given to the last frame.
    last_step: u64,
    /// The timestamp of the last frame in a closed cluster.
    closed_ts: Option<u64>,
}

#[derive(Debug)]
struct OpenCluster {
    start: u64,
    /// The timestamp of its last frame.
    last: u64,
    blocks: Vec<u8>,
    frames: u64,
}

impl WebmMuxer {
    /// A muxer for a track.
    pub fn new(info: TrackInfo) -> WebmMuxer {
        WebmMuxer {
            info,
            duration_offset: None,
            cluster: None,
            last_ts: None,
            last_step: 0,
            closed_ts: None,
        }
    }

    /// The file's first bytes: EBML header, Segment start (unknown size), Info, Tracks.
    pub fn header(&mut self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(256);
        let doc_type = match self.info.codec {
            RecCodec::H264 => "matroska",
            _ => "webm",
        };
        ebml::write_master(&mut buf, EBML, |b| {
            ebml::write_uint(b, EBML_VERSION, 1);
            ebml::write_uint(b, EBML_READ_VERSION, 1);
            ebml::write_uint(b, EBML_MAX_ID_LENGTH, 4);
            ebml::write_uint(b, EBML_MAX_SIZE_LENGTH, 8);
            ebml::write_str(b, DOC_TYPE, doc_type);
            ebml::write_uint(b, DOC_TYPE_VERSION, 4);
            ebml::write_uint(b, DOC_TYPE_READ_VERSION, 2);
        });
        ebml::write_id(&mut buf, SEGMENT);
        buf.extend_from_slice(&ebml::UNKNOWN_SIZE);

        let mut info = Vec::new();
        ebml::write_uint(&mut info, TIMESTAMP_SCALE, 1_000_000);
        ebml::write_str(&mut info, MUXING_APP, "orbita");
        ebml::write_str(&mut info, WRITING_APP, "orbita");
        let void_at = info.len();
        ebml::write_void(&mut info, DURATION_LEN);
        ebml::write_id(&mut buf, INFO);
        ebml::write_size(&mut buf, info.len() as u64);
        self.duration_offset = Some((buf.len() + void_at) as u64);
        buf.extend_from_slice(&info);

        ebml::write_master(&mut buf, TRACKS, |b| {
            ebml::write_master(b, TRACK_ENTRY, |t| self.write_track_entry(t))
        });
        buf
    }

    fn write_track_entry(&self, t: &mut Vec<u8>) {
        let info = &self.info;
        ebml::write_uint(t, TRACK_NUMBER, 1);
        ebml::write_uint(t, TRACK_UID, 1);
        let codec_id = match info.codec {
            RecCodec::Opus => "A_OPUS",
            RecCodec::Vp8 => "V_VP8",
            RecCodec::Vp9 => "V_VP9",
            RecCodec::H264 => "V_MPEG4/ISO/AVC",
        };
        match info.codec.kind() {
            Kind::Audio => ebml::write_uint(t, TRACK_TYPE, 2),
            Kind::Video => ebml::write_uint(t, TRACK_TYPE, 1),
        }
        ebml::write_uint(t, FLAG_LACING, 0);
        ebml::write_str(t, CODEC_ID, codec_id);
        if !info.codec_private.is_empty() {
            ebml::write_bytes(t, CODEC_PRIVATE, &info.codec_private);
        }
        match info.codec.kind() {
            Kind::Audio => {
                let delay_ns = u64::from(info.pre_skip) * 1_000_000_000 / 48_000;
                ebml::write_uint(t, CODEC_DELAY, delay_ns);
                ebml::write_uint(t, SEEK_PRE_ROLL, OPUS_SEEK_PRE_ROLL_NS);
                ebml::write_master(t, AUDIO, |a| {
                    ebml::write_float(a, SAMPLING_FREQUENCY, 48_000.0);
                    ebml::write_uint(a, CHANNELS, u64::from(info.channels));
                });
            }
            Kind::Video => ebml::write_master(t, VIDEO, |v| {
                ebml::write_uint(v, PIXEL_WIDTH, u64::from(info.width));
                ebml::write_uint(v, PIXEL_HEIGHT, u64::from(info.height));
            }),
        }
    }

    /// Adds a frame at `ts` ms of the file (not before the previous frame's: the caller keeps
    /// timestamps monotonic; an earlier one is written at the previous timestamp). Returns
    /// the cluster this frame closed, if it did.
    pub fn push(&mut self, ts: u64, keyframe: bool, data: &[u8]) -> Option<Cluster> {
        let ts = self.last_ts.map_or(ts, |last| ts.max(last));
        if let Some(last) = self.last_ts {
            if ts > last {
                self.last_step = ts - last;
            }
        }
        self.last_ts = Some(ts);
        let keyframe = keyframe || self.info.codec.kind() == Kind::Audio;

        let closed = match &self.cluster {
            Some(open) if open.should_close(ts, keyframe, data.len()) => self.close(),
            _ => None,
        };
        let open = self.cluster.get_or_insert_with(|| OpenCluster {
            start: ts,
            last: ts,
            blocks: Vec::new(),
            frames: 0,
        });
        open.last = ts;
        let relative = (ts - open.start) as i16;
        ebml::write_id(&mut open.blocks, SIMPLE_BLOCK);
        ebml::write_size(&mut open.blocks, 4 + data.len() as u64);
        open.blocks.push(0x81); // track number 1 as a variable-size integer
        open.blocks.extend_from_slice(&relative.to_be_bytes());
        open.blocks.push(if keyframe { 0x80 } else { 0x00 });
        open.blocks.extend_from_slice(data);
        open.frames += 1;
        closed
    }

    /// Closes the open cluster, if any, at the end of the track.
    pub fn finish(&mut self) -> Option<Cluster> {
        self.close()
    }

    /// Drops the open cluster without writing it (the recording's size limit was reached).
    pub fn discard(&mut self) {
        self.cluster = None;
    }

    /// The duration of the closed clusters (ms): their last frame's timestamp plus the step
    /// before it (the whole track after [`finish`](Self::finish)).
    pub fn duration_ms(&self) -> u64 {
        self.closed_ts.map_or(0, |ts| ts + self.last_step)
    }

    /// The Info's Duration, to write over the header's Void at `offset` once the file is
    /// complete: `(offset, bytes)`. `None` before [`header`](Self::header).
    pub fn duration_patch(&self) -> Option<(u64, Vec<u8>)> {
        let offset = self.duration_offset?;
        let mut bytes = Vec::with_capacity(DURATION_LEN);
        ebml::write_float(&mut bytes, DURATION, self.duration_ms() as f64);
        debug_assert_eq!(bytes.len(), DURATION_LEN);
        Some((offset, bytes))
    }

    fn close(&mut self) -> Option<Cluster> {
        let open = self.cluster.take()?;
        self.closed_ts = Some(open.last);
        let mut body = Vec::with_capacity(open.blocks.len() + 12);
        ebml::write_uint(&mut body, CLUSTER_TIMESTAMP, open.start);
        body.extend_from_slice(&open.blocks);
        let mut bytes = Vec::with_capacity(body.len() + 12);
        ebml::write_id(&mut bytes, CLUSTER);
        ebml::write_size(&mut bytes, body.len() as u64);
        bytes.extend_from_slice(&body);
        Some(Cluster {
            bytes,
            frames: open.frames,
        })
    }
}

impl OpenCluster {
    fn should_close(&self, ts: u64, keyframe: bool, len: usize) -> bool {
        let age = ts - self.start;
        (keyframe && age >= CLUSTER_MIN)
            || age >= CLUSTER_MAX
            || age > i16::MAX as u64
            || self.blocks.len() + len + 16 > CLUSTER_MAX_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(codec: RecCodec) -> WebmMuxer {
        WebmMuxer::new(TrackInfo {
            codec,
            width: 640,
            height: 360,
            channels: 0,
            codec_private: Vec::new(),
            pre_skip: 0,
        })
    }

    /// `(id, data offset, data size)` of the elements in `buf` (one level).
    fn elements(buf: &[u8]) -> Vec<(u32, usize, usize)> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            let id_len = buf[at].leading_zeros() as usize + 1;
            let id = buf[at..at + id_len]
                .iter()
                .fold(0u32, |v, &b| (v << 8) | u32::from(b));
            at += id_len;
            let size_len = buf[at].leading_zeros() as usize + 1;
            let mut size = u64::from(buf[at] & (0xFF >> size_len));
            for &b in &buf[at + 1..at + size_len] {
                size = (size << 8) | u64::from(b);
            }
            at += size_len;
            out.push((id, at, size as usize));
            at += size as usize;
        }
        out
    }

    #[test]
    fn header_is_ebml_then_an_unknown_size_segment() {
        let mut mux = video(RecCodec::H264);
        let header = mux.header();
        let top = elements(&header[..header.len()]);
        assert_eq!(top[0].0, EBML);
        let ebml = &header[top[0].1..top[0].1 + top[0].2];
        let doc = elements(ebml)
            .into_iter()
            .find(|e| e.0 == DOC_TYPE)
            .unwrap();
        assert_eq!(&ebml[doc.1..doc.1 + doc.2], b"matroska");
        let segment_at = top[0].1 + top[0].2;
        assert_eq!(header[segment_at..segment_at + 4], [0x18, 0x53, 0x80, 0x67]);
        assert_eq!(header[segment_at + 4..segment_at + 12], ebml::UNKNOWN_SIZE);
        let children = elements(&header[segment_at + 12..]);
        assert_eq!(
            children.iter().map(|e| e.0).collect::<Vec<_>>(),
            [INFO, TRACKS]
        );
        // The Duration patch lands exactly on the Void inside Info.
        let (offset, patch) = mux.duration_patch().unwrap();
        assert_eq!(u32::from(header[offset as usize]), ebml::VOID);
        assert_eq!(header[offset as usize + 1], 0x80 | 9);
        assert_eq!(patch.len(), DURATION_LEN);
    }

    #[test]
    fn clusters_close_at_keyframes_after_a_second_or_at_five_seconds() {
        let mut mux = video(RecCodec::Vp8);
        mux.header();
        let mut closed = Vec::new();
        // 30 fps; keyframes at 0 s, 0.5 s, 1.5 s, then none for 7 s.
        for i in 0..270u64 {
            let ts = i * 100 / 3;
            let key = matches!(i, 0 | 15 | 45);
            if let Some(c) = mux.push(ts, key, &[0u8; 100]) {
                closed.push((i, c.frames));
            }
        }
        // The 0.5 s keyframe is too early; the 1.5 s one closes the first; then every 5 s.
        assert_eq!(closed, [(45, 45), (195, 150)]);
        // The closed clusters end with frame 194 (6466 ms); the last one is still open.
        assert_eq!(mux.duration_ms(), 194 * 100 / 3 + 33);
        assert_eq!(mux.finish().unwrap().frames, 75);
        assert_eq!(mux.finish(), None);
        assert_eq!(mux.duration_ms(), 269 * 100 / 3 + 33);
    }

    #[test]
    fn audio_frames_close_clusters_every_second() {
        let mut mux = WebmMuxer::new(TrackInfo {
            codec: RecCodec::Opus,
            width: 0,
            height: 0,
            channels: 2,
            codec_private: crate::opus::opus_head(2, 0),
            pre_skip: 0,
        });
        mux.header();
        let sizes: Vec<u64> = (0..160u64)
            .filter_map(|i| mux.push(i * 20, false, &[1, 2, 3]))
            .map(|c| c.frames)
            .collect();
        assert_eq!(sizes, [50, 50, 50]);
        let last = mux.finish().unwrap();
        // Cluster { Timestamp 3000, 10 SimpleBlocks with the keyframe flag }.
        let cluster = elements(&last.bytes);
        assert_eq!(cluster[0].0, CLUSTER);
        let body = &last.bytes[cluster[0].1..];
        let children = elements(body);
        assert_eq!(children[0].0, CLUSTER_TIMESTAMP);
        assert_eq!(body[children[0].1..children[0].1 + 2], [0x0B, 0xB8]);
        assert_eq!(children.len(), 11);
        let block = &body[children[1].1..children[1].1 + children[1].2];
        assert_eq!(block, [0x81, 0, 0, 0x80, 1, 2, 3]);
        let block = &body[children[2].1..children[2].1 + children[2].2];
        assert_eq!(block[..4], [0x81, 0, 20, 0x80]);
    }

    #[test]
    fn big_frames_close_a_cluster_before_it_passes_its_byte_cap() {
        let mut mux = video(RecCodec::Vp9);
        mux.header();
        let frame = vec![0u8; 3 << 20];
        assert!(mux.push(0, true, &frame).is_none());
        assert!(mux.push(33, false, &frame).is_none());
        let closed = mux.push(66, false, &frame).expect("over 8 MiB");
        assert_eq!(closed.frames, 2);
        assert!(closed.bytes.len() <= CLUSTER_MAX_BYTES);
    }

    #[test]
    fn timestamps_never_go_backwards() {
        let mut mux = video(RecCodec::Vp8);
        mux.header();
        mux.push(100, true, &[1]);
        mux.push(90, false, &[2]);
        let c = mux.finish().unwrap();
        let body = &c.bytes[elements(&c.bytes)[0].1..];
        let blocks = elements(body);
        let second = &body[blocks[2].1..blocks[2].1 + blocks[2].2];
        assert_eq!(second[1..3], [0, 0], "written at the previous frame's time");
    }
}
